"""The library on a Dask cluster through joblib's Dask backend.

One ``distributed.LocalCluster`` of two single-threaded worker processes on
loopback serves the whole module (it takes seconds to start).  Every test
runs the same work locally and under ``joblib.parallel_config("dask")``,
asks for identical results, and checks in the scheduler's task stream that
the work ran on the workers (so that a backend silently ignored, with the
work done on local threads, fails).
"""

import os
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline

distributed = pytest.importorskip("distributed")

from sklearn_rfcnn.datasets import SpectrogramStore  # noqa: E402
from sklearn_rfcnn.estimators import RFCNNClassifier  # noqa: E402
from sklearn_rfcnn.transformers import (  # noqa: E402
    AudioLoader,
    BandStandardizer,
    MelSpectrogram,
)
from sklearn_rfcnn.utils._parallel import distributed_backend  # noqa: E402
from sklearn_rfcnn.utils._testing import TINY_PARAMS, write_tones  # noqa: E402

MEL = TINY_PARAMS["MelSpectrogram"]
CLF = {**TINY_PARAMS["RFCNNClassifier"], "width": 4, "max_epochs": 3}


@pytest.fixture(scope="module")
def client():
    import dask

    # dask's nanny gives workers MALLOC_TRIM_THRESHOLD_=65536, which makes
    # torch fits about 2x slower there (benchmarks/bench_dask.py)
    trim = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
    with dask.config.set({trim: None}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
    client = distributed.Client(cluster)
    # the workers cannot import this test module: ship its functions by value
    cloudpickle = pytest.importorskip("cloudpickle")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield client
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        client.close()
        cluster.close()


def _on_workers(client, stream, function):
    """The workers that ran tasks of ``function`` (joblib's batch keys name it)."""
    workers = {t["worker"] for t in stream.data if function in str(t["key"])}
    assert workers <= set(client.scheduler_info()["workers"])
    return workers


def _band_data(n=32, F=16, T=24, seed=0):
    """Noise spectrograms; class 1 has louder low bands (deterministic)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, F, T)).astype(np.float32)
    X[y == 1, : F // 4] += 1.0
    return X, y


def test_workers_run_one_thread_each(client):
    env = client.run(lambda: os.environ.get("OMP_NUM_THREADS"))
    assert set(env.values()) == {"1"}, env

    def torch_threads():
        import torch

        return torch.get_num_threads()

    # fits are bit-for-bit reproducible across processes with one thread each
    assert set(client.run(torch_threads).values()) == {1}


def test_distributed_backend_names_dask_only_inside_its_context(client):
    assert distributed_backend() is None
    with joblib.parallel_config("dask"):
        assert distributed_backend() == "dask"
    with joblib.parallel_config("loky", n_jobs=2):
        assert distributed_backend() is None
    assert distributed_backend() is None


def test_grid_search_over_rho_matches_the_local_run(client):
    X, y = _band_data()
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    grid = {"rho": [1, 2, 3]}
    local = GridSearchCV(RFCNNClassifier(**CLF), grid, cv=cv, n_jobs=1).fit(X, y)
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config("dask"):
            remote = GridSearchCV(RFCNNClassifier(**CLF), grid, cv=cv, n_jobs=-1)
            remote.fit(X, y)
    # the 3 candidates x 2 folds ran on the cluster (which worker is dask's choice)
    assert _on_workers(client, stream, "_fit_and_score")

    assert remote.best_params_ == local.best_params_
    # one thread per process (test above), same CPU and seeds: exact equality
    keys = ["split0_test_score", "split1_test_score", "mean_test_score"]
    for key in [*keys, "rank_test_score"]:
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    np.testing.assert_array_equal(
        remote.best_estimator_.predict_proba(X), local.best_estimator_.predict_proba(X)
    )


def test_optuna_search_workers_are_tasks_on_the_cluster(client, tmp_path):
    """RFOptunaSearchCV(n_jobs=2) under the Dask backend: its workers run there.

    Without the backend this process is worker 0 (tests/test_search_workers.py);
    under it every worker is a Dask task, so no trial ran in this process.
    """
    optuna = pytest.importorskip("optuna")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from sklearn_rfcnn.search import RFOptunaSearchCV

    X, y = load_iris(return_X_y=True)
    search = RFOptunaSearchCV(
        LogisticRegression(max_iter=300),
        {"C": optuna.distributions.FloatDistribution(1e-3, 1e3, log=True)},
        n_trials=8,
        cv=2,
        n_jobs=2,
        storage=str(tmp_path / "study.journal"),  # one file system here
        random_state=0,
        pruning=False,
    )
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config("dask"):
            search.fit(X, y)
    assert _on_workers(client, stream, "_process_worker")
    complete = [t for t in search.study_.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 8
    pids = {int(t.user_attrs["rfcnn:worker"].rsplit(":", 1)[1]) for t in complete}
    worker_pids = set(client.run(os.getpid).values())
    assert pids <= worker_pids and os.getpid() not in pids
    assert search.best_estimator_.score(X, y) > 0.9


def _fit_on_worker(X, y):
    clf = RFCNNClassifier(**CLF).fit(X, y)
    return clf, clf.predict_proba(X), os.getpid()


def test_estimator_fitted_on_a_worker_predicts_identically_here(client):
    X, y = _band_data(seed=1)
    clf, proba_there, pid = client.submit(_fit_on_worker, X, y).result()
    assert pid != os.getpid()
    np.testing.assert_array_equal(clf.predict_proba(X), proba_there)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba_there.argmax(1)])


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    """24 WAV tones (the workers share this machine's file system)."""
    folder = tmp_path_factory.mktemp("tones")
    return write_tones(folder, [150.0 + 37.0 * i for i in range(24)], duration=0.4)


@pytest.mark.parametrize("duration", [0.4, None], ids=["array", "list"])
def test_front_end_under_dask_equals_local_bit_for_bit(client, tones, duration):
    # duration set: one (n, F, T) array (MelSpectrogram's batched path);
    # None: lists of clips (its per-clip path)
    def front_end():
        return make_pipeline(
            AudioLoader(sr=8000, duration=duration), MelSpectrogram(**MEL)
        )

    local = front_end().fit_transform(tones)
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config("dask"):
            remote = front_end().fit_transform(tones)
    assert _on_workers(client, stream, "_apply_batch")
    if duration is None:
        assert len(remote) == len(local)
        assert all(map(np.array_equal, remote, local))
    else:
        assert remote.dtype == local.dtype and np.array_equal(remote, local)


def test_loader_errors_on_a_worker_name_the_file(client, tones):
    from sklearn_rfcnn.exceptions import AudioDecodeError

    missing = os.path.join(os.path.dirname(tones[0]), "missing.wav")
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config("dask"):
            with pytest.raises(AudioDecodeError, match=r"X\[3\].*missing\.wav"):
                AudioLoader(sr=8000).fit_transform([*tones[:3], missing])
    assert _on_workers(client, stream, "_apply_batch")


def _store_front_end():
    return make_pipeline(AudioLoader(sr=8000), MelSpectrogram(**MEL))


@pytest.mark.parametrize("standardize", [False, True], ids=["stateless", "fit"])
def test_spectrogram_store_under_dask_equals_a_local_build(
    client, tones, tmp_path, standardize
):
    # stateless: every chunk goes to the workers whole; with BandStandardizer
    # the front end needs fitting, which create does here on the first chunk
    # (its steps on the cluster one by one), then ships the fitted copy
    steps = [BandStandardizer()] if standardize else []
    front_end = make_pipeline(_store_front_end(), *steps)
    local = SpectrogramStore.create(
        tmp_path / "local", tones, front_end, chunk_size=8, verbose=0
    )
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config("dask"):
            remote = SpectrogramStore.create(
                tmp_path / "dask", tones, front_end, chunk_size=8, verbose=0
            )
    assert _on_workers(client, stream, "_transform_chunk")
    assert bool(_on_workers(client, stream, "_apply_batch")) is standardize
    assert len(remote) == len(local) == len(tones)
    for i in range(len(tones)):
        assert np.array_equal(remote[i], local[i])
    assert remote.paths == local.paths


def test_spectrogram_store_error_on_a_worker_names_the_clip(client, tones, tmp_path):
    from sklearn_rfcnn.exceptions import AudioDecodeError

    X = list(tones)
    X[13] = os.path.join(os.path.dirname(tones[0]), "missing.wav")
    with joblib.parallel_config("dask"):
        with pytest.raises(AudioDecodeError) as info:
            SpectrogramStore.create(
                tmp_path / "s", X, _store_front_end(), chunk_size=4, verbose=0
            )
    message = str(info.value)
    assert "failed on clip 13" in message and "missing.wav" in message
    # the chunks before the failing one were committed, in order
    assert "the 12 clips already committed are kept" in message
    assert info.value.index == 13


def test_truncated_wav_warning_comes_back_from_the_workers(client, tones, tmp_path):
    # the loader's notes about short WAVs are found on the workers: they must
    # travel back with the results (a dict filled by the workers would not)
    from sklearn_rfcnn.exceptions import RFCNNWarning

    raw = Path(tones[0]).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(raw[: len(raw) // 2])
    X = [*tones[:5], str(cut)]
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config("dask"):
            with pytest.warns(RFCNNWarning, match="shorter than their WAV header"):
                AudioLoader(sr=8000, duration=0.4).transform(X)
    assert _on_workers(client, stream, "_apply_batch")
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config("dask"):
            with pytest.warns(RFCNNWarning, match="shorter than their WAV header"):
                SpectrogramStore.create(
                    tmp_path / "s",
                    X,
                    _store_front_end(),
                    chunk_size=2,
                    verbose=0,
                )
    assert _on_workers(client, stream, "_transform_chunk")


def test_grid_search_over_a_pipeline_with_the_front_end(client, tones):
    # each fit runs on a worker, and its front end dispatches again to the
    # cluster (joblib nests the Dask backend into its tasks; it secedes while
    # waiting, so two single-threaded workers do not deadlock)
    y = np.arange(len(tones)) % 2
    pipe = make_pipeline(
        AudioLoader(sr=8000, duration=0.4),
        MelSpectrogram(**MEL),
        RFCNNClassifier(**{**CLF, "max_epochs": 1}),
    )
    grid = {"rfcnnclassifier__rho": [1, 2]}
    local = GridSearchCV(pipe, grid, cv=2, refit=False).fit(tones, y)
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config("dask"):
            search = GridSearchCV(pipe, grid, cv=2, n_jobs=-1, refit=False)
            remote = search.fit(tones, y)
    assert _on_workers(client, stream, "_fit_and_score")
    assert _on_workers(client, stream, "_apply_batch")  # from inside the fits
    for key in ["split0_test_score", "split1_test_score", "mean_test_score"]:
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
