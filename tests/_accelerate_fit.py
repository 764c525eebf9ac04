"""One process of the data-parallel fit of ``test_estimators_accelerate.py``.

Run under a launcher (``python -m torch.distributed.run --standalone
--nproc_per_node 2``, or ``accelerate launch --multi_gpu --num_processes 2`` on
a machine without GPUs): every process fits the same
``RFCNNClassifier(distributed="accelerate")`` on the same data, writes
``rank<r>.json`` (its history and test probabilities) into the output folder
and calls ``save`` and ``save_pipeline`` (the main process writes ``model/``
and ``pipeline/``); then a short fit with
early stopping on an internal hold-out records its ``valid_loss``.

Usage: ``python tests/_accelerate_fit.py OUT_DIR``.
"""

import json
import os
import sys
import time

import numpy as np

N_TRAIN, N_TEST, N_BANDS, N_FRAMES = 89, 24, 16, 32

#: Tiny, deterministic and augmentation-free: the one-process and the
#: two-process fit differ only by batch normalisation's per-process statistics.
PARAMS = {
    "width": 8,
    "rho": 2,
    "max_epochs": 6,
    "batch_size": 32,
    "lr": 1e-2,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "warmup": 0.0,
    "lr_schedule": "cosine",
    "mixup_alpha": 0.0,
    "roll": 0,
    "precision": "32",
    "channels_last": False,
    "device": "cpu",
    "random_state": 0,
    "verbose": 0,
}


def make_data():
    """Spectrograms whose class (0, 1, 2) is the band range with more energy."""
    rng = np.random.default_rng(0)
    n = N_TRAIN + N_TEST
    X = rng.normal(size=(n, N_BANDS, N_FRAMES)).astype(np.float32)
    y = np.arange(n) % 3
    for c in range(3):
        X[y == c, 5 * c : 5 * c + 6] += 2.0
    w = np.where(np.arange(n) % 4 == 0, 2.0, 1.0).astype(np.float32)
    return X[:N_TRAIN], y[:N_TRAIN], w[:N_TRAIN], X[N_TRAIN:]


def main(out):
    from sklearn_rfcnn import RFCNNClassifier

    X, y, w, X_test = make_data()
    start = time.perf_counter()
    clf = RFCNNClassifier(distributed="accelerate", **PARAMS)
    clf.fit(X, y, sample_weight=w)
    seconds = time.perf_counter() - start
    accelerator = clf.net_.accelerator
    rank = int(accelerator.process_index)
    history = clf.history_
    record = {
        "rank": rank,
        "num_processes": int(accelerator.num_processes),
        "seconds": seconds,
        "train_loss": [float(v) for v in history[:, "train_loss"]],
        "batch_size": history[:, "batches", :, "train_batch_size"],
        "process_batch_size": history[:, "batches", :, "train_process_batch_size"],
        "proba": clf.predict_proba(X_test).tolist(),
        "net": type(clf.net_).__name__,
        "wrapped": type(clf.net_.module_).__name__,
    }
    clf.save(os.path.join(out, "model"))
    # every process calls save_pipeline too; only the main process writes
    from sklearn.pipeline import Pipeline

    from sklearn_rfcnn import save_pipeline

    save_pipeline(Pipeline([("clf", clf)]), os.path.join(out, "pipeline"))

    # the internal hold-out and early stopping (best weights restored from
    # the DDP-wrapped module) over two processes
    stopper = RFCNNClassifier(
        distributed="accelerate",
        early_stopping=True,
        validation_fraction=0.2,
        **{**PARAMS, "max_epochs": 3},
    ).fit(X, y)
    record["valid_loss"] = [float(v) for v in stopper.history_[:, "valid_loss"]]
    record["valid_proba"] = stopper.predict_proba(X_test).tolist()
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main(sys.argv[1])
