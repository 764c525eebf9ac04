"""Which joblib backend the user configured: this process, or a cluster.

The library's parallel loops (the front end's :func:`thread_map`, the Optuna
search) run on threads of this process by default, which is cheaper than
``joblib.Parallel`` for work items of a few milliseconds.  When the user
chose a backend that runs elsewhere -- ``with joblib.parallel_config("dask")``
on a ``distributed`` cluster, Ray's ``"ray"``, or any other registered
backend -- the work must go through ``joblib.Parallel`` instead, or it would
never reach the cluster.  :func:`distributed_backend` tells the two apart
without importing Dask or Ray.

Process workers of this machine come from joblib's reusable loky executor
(:func:`process_executor`, the one ``joblib.Parallel(backend="loky")`` uses,
with the same thread limits); :func:`n_processes` counts them as joblib does
and :func:`warm_up_processes` starts them early, so that their seconds of
imports overlap this process's.
"""

import importlib
import os
import warnings

__all__ = [
    "LOCAL_BACKENDS",
    "close_parallel_generator",
    "distributed_backend",
    "n_processes",
    "process_executor",
    "threads_per_worker",
    "warm_up_processes",
]

#: Thread-count variables set for worker processes (as joblib's loky backend
#: does) unless the user set them.
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

#: joblib's own backends: threads or processes of this machine, started by
#: this process.  Every other backend is taken to run elsewhere.
LOCAL_BACKENDS = frozenset({"loky", "multiprocessing", "sequential", "threading"})


def _backend_name(backend):
    """The name ``backend`` is registered under in joblib, else its class name."""
    from joblib.parallel import BACKENDS

    for name, factory in BACKENDS.items():
        if type(backend) is factory:
            return name
    for name, factory in BACKENDS.items():
        if isinstance(factory, type) and isinstance(backend, factory):
            return name
    return type(backend).__name__


def distributed_backend():
    """The active joblib backend's name if it runs outside this process, else None.

    "Outside" means any backend other than joblib's local ones
    (:data:`LOCAL_BACKENDS`: ``"loky"``, ``"multiprocessing"``,
    ``"sequential"``, ``"threading"``): ``"dask"`` inside
    ``joblib.parallel_config("dask")``, ``"ray"`` with Ray's backend, or the
    registered name (else the class name) of any external backend.  Nothing
    is imported: with no backend configured the answer is None without Dask
    or Ray installed.

    Code that runs on local threads by default uses this to route its work
    through ``joblib.Parallel`` when, and only when, the user asked for a
    cluster.  A task already running on a worker sees the backend joblib
    nests there (Dask's nests itself), so its own loops dispatch to the
    cluster again unless the caller opts out.

    Returns
    -------
    name : str or None
        The backend's name, or None when the active backend (the default
        one included) runs in this process or its local children.

    Examples
    --------
    >>> import joblib
    >>> distributed_backend() is None
    True
    >>> with joblib.parallel_config("threading", n_jobs=2):
    ...     distributed_backend() is None
    True
    >>> class Remote(joblib.parallel.ParallelBackendBase):
    ...     supports_retrieve_callback = True
    ...     def effective_n_jobs(self, n_jobs):
    ...         return 4
    ...     def submit(self, func, callback=None):
    ...         raise NotImplementedError
    >>> with joblib.parallel_config(Remote()):
    ...     distributed_backend()
    'Remote'
    """
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    name = _backend_name(backend)
    return None if name in LOCAL_BACKENDS else name


def close_parallel_generator(results):
    """Close a ``joblib.Parallel(return_as="generator")`` output, quietly.

    Closing it early (the caller stopped on an error, or was itself closed)
    cancels the tasks still running; joblib then warns that tasks were
    "executed but not used", which says nothing to a user who only sees the
    error.  Other warnings pass.

    Examples
    --------
    >>> from joblib import Parallel, delayed
    >>> results = Parallel(n_jobs=2, return_as="generator")(
    ...     delayed(abs)(-i) for i in range(4)
    ... )
    >>> next(results)
    0
    >>> close_parallel_generator(results)
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r".*tasks (have been successfully executed|which were still)",
            category=UserWarning,
        )
        results.close()


def n_processes(n_jobs):
    """Worker processes for ``n_jobs``, counted as joblib does (at least 1).

    ``None`` means 1; ``-1`` all processors, ``-2`` all but one, and so on.

    Examples
    --------
    >>> n_processes(3), n_processes(None), n_processes(-1) == (os.cpu_count() or 1)
    (3, 1, True)
    """
    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return int(n_jobs)


def threads_per_worker(n_workers):
    """Threads each of ``n_workers`` processes may use without oversubscribing.

    Examples
    --------
    >>> threads_per_worker(10**6)
    1
    """
    return max((os.cpu_count() or 1) // max(int(n_workers), 1), 1)


def process_executor(n):
    """joblib's reusable loky executor with ``n`` processes, for ``n + 1`` workers.

    The calling process is counted as one more worker: each process gets
    ``threads_per_worker(n + 1)`` threads through the thread-count variables
    (``OMP_NUM_THREADS`` ...) the user did not set, as
    ``joblib.Parallel(backend="loky")`` limits its workers.  It is joblib's
    memory-mapping executor, so large arrays travel as memory maps and
    ``joblib.Parallel`` can reuse it afterwards.

    Parameters
    ----------
    n : int >= 1

    Returns
    -------
    executor : concurrent.futures.Executor

    Examples
    --------
    >>> process_executor(1).submit(abs, -3).result()
    3
    """
    from joblib.executor import get_memmapping_executor

    limit = str(threads_per_worker(n + 1))
    env = {name: limit for name in _THREAD_VARS if name not in os.environ}
    return get_memmapping_executor(n, env=env)


def _warm_up(modules, optimizer):
    """Import ``modules`` (and build a torch optimizer); return this process's id."""
    for name in modules:
        importlib.import_module(name)
    if optimizer:
        import torch

        # the first optimizer a process builds imports torch._dynamo (and SymPy)
        torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    return os.getpid()


def warm_up_processes(n, modules=(), *, optimizer=False):
    """Start ``n`` processes of joblib's reusable loky executor and warm them up.

    Returns at once: the processes start, import ``modules`` and (with
    ``optimizer=True``) build a torch optimizer in the background, while the
    caller goes on with its own imports and data.  Work submitted later to
    ``process_executor(n)`` finds them ready.  A fresh
    process spends seconds on torch's and scikit-learn's imports; started
    this way they cost no wall time when this process has the same to do.

    Parameters
    ----------
    n : int
        Number of processes (nothing is started when ``n < 1``).
    modules : iterable of str, default=()
        Modules every process imports.
    optimizer : bool, default=False
        Also build a torch optimizer once (its first construction imports
        ``torch._dynamo``, 1-3 s).

    Returns
    -------
    futures : list of concurrent.futures.Future
        One per process, resolving to its process id.

    Examples
    --------
    >>> futures = warm_up_processes(1, ["json"])
    >>> futures[0].result() != os.getpid()
    True
    """
    if n < 1:
        return []
    executor = process_executor(n)
    modules = tuple(modules)
    return [executor.submit(_warm_up, modules, optimizer) for _ in range(n)]
