"""Freed memory kept for reuse while the library's CPU passes run (glibc).

A CP-ResNet step on the CPU allocates and frees activation-sized buffers on
every batch: at the paper's width (128 channels, 256x431 input, batch 8) the
first stage's maps hold 28 M values, 56 MB in bf16.  glibc's ``malloc``
serves allocations above its mmap threshold (which it raises as buffers are
freed, but never above 32 MiB) with a fresh ``mmap`` and unmaps them when
they are freed, and it trims the top of its heap, so every batch touches
those pages anew and pays a page fault per 4 KiB page: about 2.4 M faults
in ten training steps at that width.  This is why PyTorch's CPU tuning
guide recommends preloading jemalloc or tcmalloc.

:func:`keep_freed_memory` does the in-process part of that.  While a block
runs, glibc serves large allocations from its heap (``M_MMAP_MAX=0``) and
keeps what is freed (``M_TRIM_THRESHOLD`` at its maximum), so the next batch
reuses pages already mapped (``benchmarks/bench_malloc.py``: a tenth of the
page faults, a fit at the paper's width about 1.2x faster, and a peak
resident memory about 1.3x higher, the heap holding freed buffers that are
not reused exactly).  It is what scikit-learn does with ``threadpoolctl``: a
process-wide setting scoped to the library's own call.

When the outermost block ends, glibc gets the limits its own dynamic
adjustment reaches in a torch process (every ``mallopt`` ends that
adjustment): buffers above 32 MiB are mapped afresh again, and the heap's
top is trimmed above 64 MiB.  Training (``fit``, ``partial_fit``) asks for
its memory to be handed back: once no block has run for
:data:`RELEASE_DELAY_S` seconds, if more than 64 MiB is free in the heap,
``malloc_trim`` returns it to the operating system, so that an idle fitted
estimator holds no more memory than with glibc's defaults.  The delay is
jemalloc's decay time for freed pages: calls that follow each other (a
``partial_fit`` loop, a ``predict`` after ``fit``) find the previous call's
pages still mapped -- a 2-batch ``partial_fit`` at the paper's width ran
about 1.1x faster than when each call trimmed -- and a block that starts
within the delay postpones the release to its own end.  Inference alone
keeps its freed buffers for the next call (short calls, often repeated),
as glibc does with buffers under 32 MiB.

Nothing is changed when the C library is not glibc 2.33 or later (macOS,
Windows, musl), when the user tuned glibc's allocator (``MALLOC_*_``
variables or ``glibc.malloc`` tunables) or preloaded another allocator
(``LD_PRELOAD``), or with ``RFCNN_KEEP_FREED_MEMORY=0`` -- which a program
that calls ``mallopt`` itself should set, since the limits set after a block
replace its own.
"""

import contextlib
import ctypes
import os
import threading

__all__ = [
    "KEEP_FREED_MEMORY_ENV",
    "RELEASE_DELAY_S",
    "keep_freed_memory",
    "malloc_tunable",
    "release_freed_memory",
]

#: Set to ``0`` to leave the C allocator as it is.
KEEP_FREED_MEMORY_ENV = "RFCNN_KEEP_FREED_MEMORY"
#: Seconds without a running block after which the memory a training block
#: freed is handed back (0: at once, when the last block ends); jemalloc's
#: default decay time for freed pages.
RELEASE_DELAY_S = 10.0

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
#: glibc's default for the last (malloc/malloc.c).
_DEFAULT_MMAP_MAX = 65536
#: After the blocks: the values glibc's dynamic adjustment reaches in a
#: process that has freed buffers of 32 MiB or more, as a torch process soon
#: has -- mmap above its largest dynamic threshold, 32 MiB, and trim the
#: heap's top above twice that.
_AFTER_MMAP_THRESHOLD = 32 * 2**20
_AFTER_TRIM_THRESHOLD = 64 * 2**20
#: Inside a block: keep up to this much free memory at the top of the heap
#: (the largest value ``mallopt`` takes, an ``int``).
_KEEP_TRIM_THRESHOLD = 2**31 - 1

#: Environment variables by which a user tunes glibc's malloc (or replaces it).
_MALLOC_VARS = (
    "MALLOC_MMAP_MAX_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
)
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc", "hoard", "snmalloc")

_lock = threading.Lock()
_depth = 0
_release = False  # a release is pending: asked for and not done yet
_timer = None  # the threading.Timer that will do it
_libc = None


def _after_fork_in_child():
    """A forked child has no timer thread, and the lock may have been held."""
    global _lock, _timer
    _lock = threading.Lock()
    _timer = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Mallinfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc 2.33+)."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _free_bytes(libc):
    """Bytes the heap holds free (``mallinfo2().fordblks``)."""
    return int(libc.mallinfo2().fordblks)


def _is_glibc():
    """Whether this process runs on glibc (``confstr``, no file is read)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc ")
    except (AttributeError, ValueError, OSError):  # not a GNU C library
        return False


def _glibc():
    """The loaded glibc (``ctypes.CDLL``) with ``mallopt``, or None."""
    global _libc
    if _libc is None:
        _libc = False
        if _is_glibc():
            try:
                libc = ctypes.CDLL("libc.so.6")
                libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                libc.mallinfo2.restype = _Mallinfo2
                _libc = libc
            except (OSError, AttributeError):
                pass
    return _libc or None


def malloc_tunable(environ=None):
    """Why the allocator is left alone, or None when it may be tuned.

    Parameters
    ----------
    environ : mapping, optional
        The environment to read (default: ``os.environ``).

    Returns
    -------
    reason : str or None
        A short reason (e.g. ``"not glibc"``), or None.

    Examples
    --------
    >>> malloc_tunable({"RFCNN_KEEP_FREED_MEMORY": "0"})
    'RFCNN_KEEP_FREED_MEMORY=0'
    >>> malloc_tunable({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}) is not None
    True
    """
    environ = os.environ if environ is None else environ
    if environ.get(KEEP_FREED_MEMORY_ENV, "").strip().lower() in {"0", "false", "no"}:
        return f"{KEEP_FREED_MEMORY_ENV}=0"
    if _glibc() is None:
        return "not glibc"
    tuned = [name for name in _MALLOC_VARS if name in environ]
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        tuned.append("GLIBC_TUNABLES")
    if tuned:
        return "malloc tuned by " + ", ".join(tuned)
    preload = environ.get("LD_PRELOAD", "").lower()
    if any(name in preload for name in _OTHER_ALLOCATORS):
        return "another allocator is preloaded"
    return None


def _trim(libc):
    """Hand the heap's free memory back if more than 64 MiB (``_lock`` held)."""
    global _release
    _release = False
    if _free_bytes(libc) > _AFTER_TRIM_THRESHOLD:
        libc.malloc_trim(0)


def _cancel_timer():
    """Stop the scheduled release, if any (``_lock`` held)."""
    global _timer
    if _timer is not None:
        _timer.cancel()
        _timer = None


def _release_when_idle(libc):
    """Timer target: trim unless a block started since it was scheduled."""
    global _timer
    with _lock:
        if _timer is threading.current_thread():
            _timer = None
            if _depth == 0 and _release:
                _trim(libc)


def release_freed_memory():
    """Hand back now the memory a finished training block left to release.

    What happens by itself :data:`RELEASE_DELAY_S` seconds after the last
    block ended; does nothing while a block runs or when no release is
    pending.

    Returns
    -------
    released : bool
        Whether a pending release was carried out (``malloc_trim`` is called
        only when more than 64 MiB is free).

    Examples
    --------
    >>> with keep_freed_memory():
    ...     pass
    >>> _ = release_freed_memory()  # True on glibc: the block asked for it
    >>> release_freed_memory()  # nothing is pending any more
    False
    """
    libc = _glibc()
    with _lock:
        if libc is None or _depth or not _release:
            return False
        _cancel_timer()
        _trim(libc)
        return True


@contextlib.contextmanager
def keep_freed_memory(enabled=True, release=True):
    """Keep memory freed inside the block mapped, for reuse by the next batch.

    Nested and concurrent blocks (threads) share one setting: it is made when
    the first block starts and undone when the last one ends.  If any block
    asked to ``release``, the heap's free memory is handed back to the
    operating system (``malloc_trim``, when there is more than 64 MiB of it)
    once no block has run for :data:`RELEASE_DELAY_S` seconds: a block that
    starts before then postpones the release to the end of its own (see
    :func:`release_freed_memory` to do it at once).  A no-op where
    :func:`malloc_tunable` gives a reason, or with ``enabled=False``.

    Parameters
    ----------
    enabled : bool, default=True
        False: run the block with the allocator as it is.
    release : bool, default=True
        Hand the free memory back once the blocks end and stay idle.  False
        keeps it for the next call (the estimators' inference passes: short,
        often repeated calls whose buffers the next one reuses).

    Examples
    --------
    >>> import torch
    >>> with keep_freed_memory():
    ...     total = sum(float(torch.ones(1000).sum()) for _ in range(3))
    >>> total
    3000.0
    """
    global _depth, _release, _timer
    libc = _glibc() if enabled and malloc_tunable() is None else None
    if libc is None:
        yield
        return
    with _lock:
        _cancel_timer()  # a pending release waits for this block
        _depth += 1
        _release = _release or bool(release)
        if _depth == 1:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_TRIM_THRESHOLD)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                libc.mallopt(_M_MMAP_THRESHOLD, _AFTER_MMAP_THRESHOLD)
                libc.mallopt(_M_TRIM_THRESHOLD, _AFTER_TRIM_THRESHOLD)
                if _release and RELEASE_DELAY_S <= 0:
                    _trim(libc)
                elif _release:
                    _timer = threading.Timer(
                        RELEASE_DELAY_S, _release_when_idle, args=(libc,)
                    )
                    _timer.daemon = True  # never holds up the interpreter's exit
                    _timer.start()
