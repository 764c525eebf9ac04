"""Which joblib backend the user configured: this process, or a cluster.

The library's parallel loops (the front end's :func:`thread_map`, the Optuna
search) run on threads of this process by default, which is cheaper than
``joblib.Parallel`` for work items of a few milliseconds.  When the user
chose a backend that runs elsewhere -- ``with joblib.parallel_config("dask")``
on a ``distributed`` cluster, Ray's ``"ray"``, or any other registered
backend -- the work must go through ``joblib.Parallel`` instead, or it would
never reach the cluster.  :func:`distributed_backend` tells the two apart
without importing Dask or Ray.
"""

import warnings

__all__ = ["LOCAL_BACKENDS", "close_parallel_generator", "distributed_backend"]

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
