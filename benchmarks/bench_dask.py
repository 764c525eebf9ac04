"""The library on a Dask cluster (joblib's Dask backend) against one local process.

Three measurements side by side in one run, one JSON document
(``results/bench_dask.json``), on a ``distributed.LocalCluster`` of
``--workers`` single-threaded worker processes on loopback:

(a) **search**: ``GridSearchCV`` over ``rho`` (3 values x 3 folds of a small
    ``RFCNNClassifier`` on synthetic band-energy spectrograms) with
    ``n_jobs=1`` in this process, against the same search inside
    ``joblib.parallel_config("dask")`` with ``n_jobs=-1``.  The cluster's
    start-up and the workers' first imports and fit are timed apart: the
    "warm" ratio leaves them out, the "cold" one adds them to the cluster's
    time.  The two searches must agree (``best_params_``,
    ``cv_results_`` scores), which the JSON records.
(b) **front end**: ``AudioLoader`` + ``MelSpectrogram`` (the paper's
    settings) over ``--clips`` WAV files written to a scratch folder, with
    ``n_jobs=1``, with ``n_jobs=2`` local threads, and on the cluster;
    the outputs must be equal bit for bit.
(c) **store**: ``SpectrogramStore.create`` of the same clips locally
    (``n_jobs=1``) and on the cluster (the extraction runs on the workers,
    the writer here).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_dask.py            # ~2 min
    OMP_NUM_THREADS=1 python benchmarks/bench_dask.py --keep-malloc-trim
    OMP_NUM_THREADS=1 python benchmarks/bench_dask.py --quick    # seconds

The workers start without dask's ``MALLOC_TRIM_THRESHOLD_=65536`` unless
``--keep-malloc-trim`` (results then in ``results/bench_dask_malloc_trim.json``).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import format_machine, machine_info, write_results


def _band_data(n, F, T, seed=0, strength=0.3):
    """Noise spectrograms; class 1 has louder low bands (by ``strength``)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, F, T)).astype(np.float32)
    X[y == 1, : F // 4] += strength
    return X, y


def _warm_up():
    """Import and run everything once (torch, librosa's caches, the CNN)."""
    from sklearn_rfcnn.estimators import RFCNNClassifier
    from sklearn_rfcnn.transformers import MelSpectrogram

    MelSpectrogram().fit_transform(np.zeros((2, 22050), dtype=np.float32))
    X, y = _band_data(8, 8, 16)
    RFCNNClassifier(width=4, max_epochs=1, validation_fraction=None, verbose=0).fit(
        X, y
    )
    return os.getpid()


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_search(client, args):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from sklearn_rfcnn.estimators import RFCNNClassifier
    from sklearn_rfcnn.utils._testing import TINY_PARAMS

    if args.quick:
        X, y = _band_data(24, 16, 24)
        clf_params, cv = {"width": 4, "max_epochs": 1}, 2
    else:
        X, y = _band_data(384, 40, 300)
        clf_params, cv = {"width": 8, "max_epochs": 4}, 3
    # the test suite's tiny configuration (float32, default memory format,
    # no augmentation, Adam 1e-2 with a cosine decay), wider and longer
    clf = RFCNNClassifier(
        **{**TINY_PARAMS["RFCNNClassifier"], **clf_params, "batch_size": 32}
    )
    grid = {"rho": [1, 2, 3]}
    folds = StratifiedKFold(cv, shuffle=True, random_state=0)

    def search(n_jobs):
        return GridSearchCV(clf, grid, cv=folds, n_jobs=n_jobs, refit=False).fit(X, y)

    local, t_local = _timed(lambda: search(1))
    with joblib.parallel_config("dask"):
        remote, t_dask = _timed(lambda: search(-1))
    keys = ["mean_test_score", "rank_test_score"]
    keys += [f"split{k}_test_score" for k in range(cv)]
    agree = remote.best_params_ == local.best_params_ and all(
        np.array_equal(remote.cv_results_[k], local.cv_results_[k]) for k in keys
    )
    n_fits = len(grid["rho"]) * cv
    return {
        "data": list(X.shape),
        "classifier": clf_params,
        "fits": n_fits,
        "fit_s_mean_local": round(t_local / n_fits, 3),
        "local_n_jobs1_s": round(t_local, 2),
        "dask_s": round(t_dask, 2),
        "same_best_params_and_scores": bool(agree),
        "best_params": local.best_params_,
        "mean_test_score": [float(v) for v in local.cv_results_["mean_test_score"]],
    }


def bench_front_end(client, args, tmp):
    from sklearn.pipeline import make_pipeline

    from sklearn_rfcnn.datasets import SpectrogramStore
    from sklearn_rfcnn.transformers import AudioLoader, MelSpectrogram
    from sklearn_rfcnn.utils._testing import write_tones

    n, duration, sr = (16, 1.0, 22050) if args.quick else (args.clips, 10.0, 22050)
    rng = np.random.default_rng(0)
    paths = write_tones(tmp, rng.uniform(100, 4000, n), duration=duration, sr=sr)

    def front_end(n_jobs):
        return make_pipeline(
            AudioLoader(sr=sr, duration=duration, n_jobs=n_jobs),
            MelSpectrogram(sr=sr, n_jobs=n_jobs),
        )

    local, t_local = _timed(lambda: front_end(1).fit_transform(paths))
    threads, t_threads = _timed(lambda: front_end(2).fit_transform(paths))
    with joblib.parallel_config("dask"):
        remote, t_dask = _timed(lambda: front_end(None).fit_transform(paths))

    def store(name, n_jobs):
        return SpectrogramStore.create(
            Path(tmp) / name, paths, front_end(n_jobs), n_jobs=n_jobs, verbose=0
        )

    s_local, t_store_local = _timed(lambda: store("store_local", 1))
    with joblib.parallel_config("dask"):
        s_dask, t_store_dask = _timed(lambda: store("store_dask", None))
    same_store = all(np.array_equal(s_local[i], s_dask[i]) for i in range(n))
    s_local.close()
    s_dask.close()
    return {
        "clips": n,
        "clip_s": duration,
        "sr": sr,
        "spectrogram_shape": list(local.shape[1:]),
        "local_n_jobs1_s": round(t_local, 2),
        "local_threads2_s": round(t_threads, 2),
        "dask_s": round(t_dask, 2),
        "ms_per_clip_local": round(1000 * t_local / n, 2),
        "bit_identical": bool(
            np.array_equal(local, remote) and np.array_equal(local, threads)
        ),
        "store_local_n_jobs1_s": round(t_store_local, 2),
        "store_dask_s": round(t_store_dask, 2),
        "store_bit_identical": bool(same_store),
    }


def _ratio(a, b):
    return round(a / b, 2) if b > 0 else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke)")
    parser.add_argument("--out", default=None, help="JSON path")
    parser.add_argument("--tmp", default=None, help="scratch folder (WAV files)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--clips", type=int, default=300, help="clips in (b), (c)")
    parser.add_argument(
        "--keep-malloc-trim",
        action="store_true",
        help="keep dask's MALLOC_TRIM_THRESHOLD_=65536 for the workers",
    )
    args = parser.parse_args(argv)
    started = time.time()
    info = machine_info()
    print(format_machine(info), flush=True)
    load_before = [round(v, 2) for v in os.getloadavg()]
    print(f"load average before: {load_before}", flush=True)

    import dask
    from distributed import Client, LocalCluster

    if not args.keep_malloc_trim:
        # dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which
        # made each CNN fit on a worker about 2x slower here (glibc returns
        # torch's freed buffers to the OS and maps them again every batch)
        dask.config.set(
            {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
        )
    print(
        "workers' MALLOC_TRIM_THRESHOLD_: "
        + ("dask's default (65536)" if args.keep_malloc_trim else "unset"),
        flush=True,
    )

    def start():
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
        return cluster, Client(cluster)

    (cluster, client), t_start = _timed(start)
    print(f"cluster start-up ({args.workers} workers): {t_start:.2f} s", flush=True)
    _warm_up()  # this process: imports, caches, a first fit
    # the workers: the same, in parallel (a worker's first task pays it)
    _, t_warm = _timed(lambda: client.run(_warm_up))
    print(f"workers' first imports and fit: {t_warm:.2f} s", flush=True)
    tmp = tempfile.mkdtemp(prefix="bench_dask_", dir=args.tmp)
    try:
        search = bench_search(client, args)
        print(
            f"(a) GridSearchCV, {search['fits']} fits of {search['data']} "
            f"(~{search['fit_s_mean_local']} s each): local n_jobs=1 "
            f"{search['local_n_jobs1_s']} s, dask {search['dask_s']} s "
            f"(same results: {search['same_best_params_and_scores']})",
            flush=True,
        )
        front = bench_front_end(client, args, tmp)
        print(
            f"(b) front end, {front['clips']} clips of {front['clip_s']} s: local "
            f"n_jobs=1 {front['local_n_jobs1_s']} s, 2 threads "
            f"{front['local_threads2_s']} s, dask {front['dask_s']} s "
            f"(bit-identical: {front['bit_identical']})",
            flush=True,
        )
        print(
            f"(c) SpectrogramStore.create: local n_jobs=1 "
            f"{front['store_local_n_jobs1_s']} s, dask {front['store_dask_s']} s "
            f"(bit-identical: {front['store_bit_identical']})",
            flush=True,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        client.close()
        cluster.close()
    ratios = {
        "search_local_over_dask_warm": _ratio(
            search["local_n_jobs1_s"], search["dask_s"]
        ),
        "search_local_over_dask_cold": _ratio(
            search["local_n_jobs1_s"], search["dask_s"] + t_start + t_warm
        ),
        "front_end_local_over_dask": _ratio(front["local_n_jobs1_s"], front["dask_s"]),
        "front_end_local_over_2_threads": _ratio(
            front["local_n_jobs1_s"], front["local_threads2_s"]
        ),
        "store_local_over_dask": _ratio(
            front["store_local_n_jobs1_s"], front["store_dask_s"]
        ),
    }
    for key, value in ratios.items():
        print(f"{key}: {value}x", flush=True)
    load_after = [round(v, 2) for v in os.getloadavg()]
    print(f"load average after: {load_after}", flush=True)
    results = {
        "workers": args.workers,
        "threads_per_worker": 1,
        "workers_malloc_trim_threshold": 65536 if args.keep_malloc_trim else None,
        "cluster_start_s": round(t_start, 2),
        "workers_warm_up_s": round(t_warm, 2),
        "search": search,
        "front_end": front,
        "ratios": ratios,
        "load_average_before": load_before,
        "load_average_after": load_after,
    }
    name = "bench_dask_quick" if args.quick else "bench_dask"
    if args.keep_malloc_trim and args.out is None:
        name += "_malloc_trim"
    path = write_results(name, results, started=started, path=args.out)
    print(f"wrote {path}", flush=True)
    return results


if __name__ == "__main__":
    main()
