"""Torch helpers: device, precision and memory-format resolution; seeding.

Nothing here touches global state: seeding forks torch's RNG, and the
hardware queries only read what torch reports.
"""

import contextlib
import os

import numpy as np
import torch
from sklearn.utils import check_random_state

from sklearn_rfcnn.exceptions import ParameterError

__all__ = [
    "cpu_avx2",
    "cpu_avx512",
    "cpu_native_bf16",
    "proc_cpuinfo_flags",
    "resolve_channels_last",
    "resolve_device",
    "resolve_precision",
    "seeded_torch",
    "torch_seed_from",
]

#: ``precision`` value -> autocast dtype (None: no autocast, float32).
AMP_DTYPES = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}

#: CPU capability flags (``torch.cpu.get_capabilities()``) with native bf16
#: matrix arithmetic in oneDNN: AMX tiles, or AVX-512 with the BF16 extension.
_NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")

#: Values of oneDNN's ``ONEDNN_MAX_CPU_ISA`` that stop it below AVX-512.
_ONEDNN_ISAS_WITHOUT_AVX512 = frozenset(
    {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2"}
)
#: ... and those that stop it below AVX2.
_ONEDNN_ISAS_WITHOUT_AVX2 = frozenset({"SSE41", "AVX"})
#: ... and those that stop it below native bf16.
_ONEDNN_ISAS_WITHOUT_BF16 = _ONEDNN_ISAS_WITHOUT_AVX512 | {
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
}


#: ``/proc/cpuinfo`` flag -> the name ``torch.cpu.get_capabilities()`` gives it.
_CPUINFO_CAPABILITIES = {
    "avx2": "avx2",
    "avx512f": "avx512_f",
    "avx512_bf16": "avx512_bf16",
    "amx_bf16": "amx_bf16",
}


def proc_cpuinfo_flags(path="/proc/cpuinfo"):
    """The CPU flags the Linux kernel lists (``flags`` of ``/proc/cpuinfo``).

    Parameters
    ----------
    path : str, default="/proc/cpuinfo"

    Returns
    -------
    flags : set of str
        Empty where the file cannot be read (not Linux) or has no flags.

    Examples
    --------
    >>> isinstance(proc_cpuinfo_flags(), set)
    True
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _cpu_capabilities():
    """``torch.cpu.get_capabilities()``, or the same keys read off cpuinfo.

    torch added that query in 2026 (2.1x); with an older torch the flags
    that decide ``"auto"`` (AVX2, AVX-512, the two native bf16 ones) come
    from ``/proc/cpuinfo`` under torch's names, and none are reported
    elsewhere (float32 then).
    """
    query = getattr(torch.cpu, "get_capabilities", None)
    if query is not None:
        return query()
    flags = proc_cpuinfo_flags()
    return {name: flag in flags for flag, name in _CPUINFO_CAPABILITIES.items()}


def _onednn_capped(isas):
    """Whether ``ONEDNN_MAX_CPU_ISA`` (or the older ``DNNL_...``) is one of ``isas``."""
    return any(
        os.environ.get(var, "").upper() in isas
        for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
    )


def _onednn_isa(flag, capped_below):
    """Whether oneDNN can use the CPU capability ``flag``.

    False without oneDNN, or when ``ONEDNN_MAX_CPU_ISA`` is one of
    ``capped_below``.
    """
    if not torch.backends.mkldnn.is_available() or _onednn_capped(capped_below):
        return False
    return bool(_cpu_capabilities().get(flag, False))


def resolve_device(device="auto"):
    """Turn ``"auto"`` into ``"cuda"`` when a GPU is present, else ``"cpu"``.

    Parameters
    ----------
    device : str or torch.device, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns
    -------
    device : str
        A concrete torch device string.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    try:
        torch.device(device)
    except (RuntimeError, ValueError):
        raise ParameterError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', "
            "'cuda', 'cuda:N' or 'mps'."
        ) from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(
            f"device={device!r} was requested but CUDA is not available on this "
            "machine; use device='auto' or device='cpu'."
        )
    return device


def cpu_native_bf16():
    """Which native bf16 instructions this CPU has, as torch reports them.

    Reads :func:`torch.cpu.get_capabilities` (cpuinfo, as oneDNN sees the
    CPU; with a torch older than that query, the same flags of
    ``/proc/cpuinfo``): AMX (``amx_bf16``) and AVX-512-BF16 (``avx512_bf16``) run bf16
    convolutions natively; without them oneDNN emulates bf16, several times
    slower than float32 (measured 0.1x on an AVX2-only EPYC).  A oneDNN
    capped below them (``ONEDNN_MAX_CPU_ISA=AVX2``, say) or a torch built
    without oneDNN counts as having none.

    Returns
    -------
    flags : tuple of str
        The native-bf16 flags present (empty where bf16 would be emulated,
        and on CPUs other than x86-64, where it has not been measured).

    Examples
    --------
    >>> isinstance(cpu_native_bf16(), tuple)
    True
    """
    if not torch.backends.mkldnn.is_available():
        return ()
    if _onednn_capped(_ONEDNN_ISAS_WITHOUT_BF16):
        return ()  # oneDNN was told not to use the bf16 instructions
    caps = _cpu_capabilities()
    return tuple(flag for flag in _NATIVE_BF16_FLAGS if caps.get(flag, False))


def cpu_avx2():
    """Whether oneDNN can use AVX2 on this CPU (x86-64 ``avx2``, not capped below).

    True also where AVX-512 is there (:func:`cpu_avx512`); False on other
    architectures.

    Examples
    --------
    >>> isinstance(cpu_avx2(), bool)
    True
    """
    return _onednn_isa("avx2", _ONEDNN_ISAS_WITHOUT_AVX2)


def cpu_avx512():
    """Whether oneDNN can use AVX-512 on this CPU (``avx512_f``, not capped).

    Examples
    --------
    >>> isinstance(cpu_avx512(), bool)
    True
    """
    return _onednn_isa("avx512_f", _ONEDNN_ISAS_WITHOUT_AVX512)


def resolve_precision(precision, device):
    """Turn ``precision="auto"`` into ``"32"``, ``"bf16"`` or ``"16"`` for a device.

    * CPU: ``"bf16"`` (autocast) where the CPU has native bf16 arithmetic
      (:func:`cpu_native_bf16`: AMX or AVX-512-BF16), ``"32"`` elsewhere,
      where bf16 is emulated and about 10x slower;
    * CUDA: ``"bf16"`` where the GPU supports it, else ``"16"`` (float16
      with a gradient scaler);
    * other devices (MPS): ``"32"``.

    An explicit value is returned unchanged.

    Parameters
    ----------
    precision : {"auto", "32", "bf16", "16"}
    device : str
        A concrete device (:func:`resolve_device`).

    Returns
    -------
    precision : {"32", "bf16", "16"}

    Examples
    --------
    >>> resolve_precision("32", "cpu")
    '32'
    >>> resolve_precision("auto", "cpu") == ("bf16" if cpu_native_bf16() else "32")
    True
    """
    if precision != "auto":
        return precision
    kind = torch.device(device).type
    if kind == "cpu":
        return "bf16" if cpu_native_bf16() else "32"
    if kind == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "16"
    return "32"


def resolve_channels_last(channels_last, device, precision, inference=False):
    """Turn ``channels_last="auto"`` into a bool for a device and precision.

    On the CPU, ``"auto"`` is True where channels-last was measured faster
    for CP-ResNet (``benchmarks/speed.py``): with bf16 autocast (AMX Xeon,
    AVX-512-BF16 EPYC: 1.2-2x on top of bf16), in float32 where oneDNN has
    AVX-512 (1.2-1.6x training) or AVX2 (training 0.97-1.06x at the
    paper's width and 1.4x at width 24, with the weight gradients of the
    wide convolutions computed in NCHW, :mod:`~sklearn_rfcnn.utils._conv_grad`;
    without that, 0.65-0.9x at the paper's width), and for inference
    everywhere (1.5-1.6x on an AVX2 oneDNN).  For *training* it is False on
    CPUs without AVX2 (other architectures), where it was not measured.  On
    CUDA it is True with mixed precision (tensor-core convolutions in cuDNN
    want NHWC) and False in float32, for both phases; on other devices
    False.  An explicit bool is returned as is.

    Parameters
    ----------
    channels_last : bool or "auto"
    device : str
        A concrete device.
    precision : {"32", "bf16", "16"}
        The resolved precision (:func:`resolve_precision`).
    inference : bool, default=False
        Decide the layout of inference passes (prediction, embedding)
        instead of training ones.

    Returns
    -------
    channels_last : bool

    Examples
    --------
    >>> resolve_channels_last("auto", "cpu", "bf16")
    True
    >>> resolve_channels_last("auto", "cpu", "32", inference=True)
    True
    >>> resolve_channels_last(False, "cpu", "bf16", inference=True)
    False
    """
    if channels_last != "auto":
        return bool(channels_last)
    kind = torch.device(device).type
    if kind == "cpu":
        return precision == "bf16" or cpu_avx2() or bool(inference)
    if kind == "cuda":
        return precision != "32"
    return False


def torch_seed_from(random_state):
    """Draw a 31-bit torch seed from a scikit-learn ``random_state``.

    Examples
    --------
    >>> torch_seed_from(0) == torch_seed_from(0)
    True
    """
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def seeded_torch(seed, device="cpu"):
    """Run a block with torch's RNG seeded, restoring the global RNG afterwards.

    Parameters
    ----------
    seed : int
        The seed for the forked RNG.
    device : str, default="cpu"
        When a CUDA device, its RNG is forked too.
    """
    devices = []
    if str(device).startswith("cuda") and torch.cuda.is_available():
        devices = [torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        # only the generators forked here: torch.manual_seed would also seed
        # every other device (and, before CUDA is initialised, queue a lazy
        # seeding call with a formatted stack trace, ~1 ms per fit call)
        torch.default_generator.manual_seed(seed)
        for index in devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield
