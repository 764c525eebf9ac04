"""Routing of the front end's loops to a joblib backend that runs elsewhere.

Without Dask: a threading backend registered under another name stands in
for a cluster (``distributed_backend`` goes by the registered name), so the
batching, ordering and error paths of ``thread_map`` through
``joblib.Parallel`` are tested here; ``tests/test_dask.py`` runs the real
thing on a ``LocalCluster``.
"""

import os

import joblib
import numpy as np
import pytest
from joblib._parallel_backends import ThreadingBackend

from sklearn_rfcnn.transformers import _validation
from sklearn_rfcnn.transformers._validation import thread_map
from sklearn_rfcnn.utils._parallel import LOCAL_BACKENDS, distributed_backend


class _Elsewhere(ThreadingBackend):
    """Threads of this process, registered as if they were a cluster."""


joblib.register_parallel_backend("elsewhere-test", _Elsewhere)


@pytest.fixture
def batches(monkeypatch):
    """The batches thread_map hands to joblib.Parallel, in dispatch order."""
    seen = []
    apply = _validation._apply_batch

    def spy(fn, batch):
        seen.append(list(batch))
        return apply(fn, batch)

    monkeypatch.setattr(_validation, "_apply_batch", spy)
    return seen


@pytest.mark.parametrize("name", sorted(LOCAL_BACKENDS))
def test_local_backends_are_not_distributed(name):
    with joblib.parallel_config(name, n_jobs=2):
        assert distributed_backend() is None


def test_a_registered_backend_is_distributed_under_its_name():
    assert distributed_backend() is None
    with joblib.parallel_config("elsewhere-test", n_jobs=2):
        assert distributed_backend() == "elsewhere-test"
    with joblib.parallel_config(_Elsewhere(), n_jobs=2):  # an instance: its name
        assert distributed_backend() == "elsewhere-test"


def test_thread_map_goes_through_parallel_in_batches_in_order(batches):
    with joblib.parallel_config("elsewhere-test", n_jobs=2):
        out = list(thread_map(lambda x: 2 * x, range(40), None))
    assert out == [2 * x for x in range(40)]
    # about four tasks per worker: 40 items / (4 x 2) = batches of 5
    assert [len(b) for b in batches] == [5] * 8
    assert sorted(x for b in batches for x in b) == list(range(40))


def test_thread_map_batches_are_capped_by_their_array_bytes(batches):
    items = [np.zeros(2**20, dtype=np.float32) for _ in range(8)]  # 4 MiB each
    with joblib.parallel_config("elsewhere-test", n_jobs=2):
        out = list(thread_map(np.sum, items, None))
    assert out == [0.0] * 8
    assert [len(b) for b in batches] == [1] * 8  # 8 MiB per task at most

    batches.clear()
    with joblib.parallel_config("elsewhere-test", n_jobs=2):
        assert list(thread_map(abs, [-1, -2, -3], None, batch_size=2)) == [1, 2, 3]
    assert batches == [[-1, -2], [-3]]


def test_thread_map_stays_local_without_such_a_backend_or_with_n_jobs_1(batches):
    assert list(thread_map(abs, [-1, -2, -3, -4], 2)) == [1, 2, 3, 4]
    with joblib.parallel_config("elsewhere-test", n_jobs=2):
        assert list(thread_map(abs, [-1, -2], 1)) == [1, 2]
    assert batches == []


def test_thread_map_errors_propagate_through_parallel(batches):
    def check(x):
        if x == 7:
            raise ValueError(f"X[{x}] is bad; drop it")
        return x

    with joblib.parallel_config("elsewhere-test", n_jobs=2):
        with pytest.raises(ValueError, match=r"X\[7\] is bad"):
            list(thread_map(check, range(16), None))
    assert batches  # the error came through joblib.Parallel


def test_front_end_under_such_a_backend_equals_local(batches, tone_files):
    from sklearn.pipeline import make_pipeline

    from sklearn_rfcnn.transformers import AudioLoader, MelSpectrogram
    from sklearn_rfcnn.utils._testing import TINY_PARAMS

    paths, _ = tone_files
    for duration in (0.5, None):
        fe = make_pipeline(
            AudioLoader(sr=8000, duration=duration),
            MelSpectrogram(**TINY_PARAMS["MelSpectrogram"]),
        )
        local = fe.fit_transform(paths)
        batches.clear()
        with joblib.parallel_config("elsewhere-test", n_jobs=2):
            remote = fe.fit_transform(paths)
        assert batches
        assert all(map(np.array_equal, remote, local)) and len(remote) == len(local)


def _imported(name):
    import sys

    return os.getpid(), name in sys.modules


def test_warm_up_processes_leaves_ready_workers_for_the_next_submission():
    from sklearn_rfcnn.utils._parallel import (
        n_processes,
        process_executor,
        warm_up_processes,
    )

    assert warm_up_processes(0, ["json"]) == []
    (future,) = warm_up_processes(1, ["sklearn_rfcnn.receptive_field"])
    pid = future.result(timeout=120)
    assert pid != os.getpid()
    # the search's later submission finds the same, already-importing process
    executor = process_executor(1)
    assert executor.submit(_imported, "sklearn_rfcnn.receptive_field").result() == (
        pid,
        True,
    )
    assert n_processes(None) == 1 and n_processes(2) == 2
    assert n_processes(-1) == (os.cpu_count() or 1)
    # joblib's own loky Parallel can use the executor after us (same kind)
    out = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(abs)(-i) for i in range(3)
    )
    assert out == [0, 1, 2]
