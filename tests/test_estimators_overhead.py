"""Per-call costs the estimators avoid (``benchmarks/speed.py`` measures them).

Each test fails if its cut is undone: the train/eval switch walking the module
tree on every batch, the epoch table formatted for ``verbose=0``,
``torch.manual_seed`` seeding generators the seeded block does not fork,
the per-tensor loop of the optimizer step (torch's fused step instead), and
the page faults of buffers mapped afresh on every batch (the CPU passes run
in :func:`~sklearn_rfcnn.utils._malloc.keep_freed_memory`).
"""

import contextlib
import types

import numpy as np
import torch

from sklearn_rfcnn import RFCNNClassifier
from sklearn_rfcnn.estimators.callbacks import ScientificPrintLog
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS
from sklearn_rfcnn.utils._torch import seeded_torch

FAST = {**FAST_CNN_PARAMS, "precision": "32", "channels_last": False}


def _data(n=24):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 8, 12)).astype(np.float32)
    return X, np.arange(n) % 2


def test_train_eval_switch_only_when_a_module_is_in_the_other_mode(monkeypatch):
    X, y = _data()
    clf = RFCNNClassifier(**FAST).fit(X, y)
    clf.predict_proba(X)  # the network is in eval mode
    network = clf.net_.module_
    calls = []
    original = torch.nn.Module.train

    def counting(self, mode=True):
        if self is network:  # the switches of the whole network
            calls.append(mode)
        return original(self, mode)

    monkeypatch.setattr(torch.nn.Module, "train", counting)
    clf.partial_fit(X, y)  # 3 batches: one switch to training, not one per batch
    assert calls == [True]
    calls.clear()
    clf.predict_proba(X)
    clf.predict_proba(X)  # already in eval mode: nothing to switch
    assert calls == [False]
    # a single submodule in the other mode switches the whole network
    clf.net_.module_.stem.train()
    clf.net_._set_training(False)
    assert not any(m.training for m in clf.net_.module_.modules())


def test_no_epoch_table_is_formatted_for_verbose_0(monkeypatch, capsys):
    X, y = _data()

    def fail(self, row):
        raise AssertionError("table formatted although nothing prints it")

    monkeypatch.setattr(ScientificPrintLog, "table", fail)
    RFCNNClassifier(**FAST).fit(X, y)
    assert capsys.readouterr().out == ""
    monkeypatch.undo()
    RFCNNClassifier(**{**FAST, "verbose": 1}).fit(X, y)
    assert "train_loss" in capsys.readouterr().out


def test_seeded_block_seeds_only_the_generators_it_forks(monkeypatch):
    def fail(seed):
        raise AssertionError("torch.manual_seed seeds every device")

    monkeypatch.setattr(torch, "manual_seed", fail)
    before = torch.random.get_rng_state()
    with seeded_torch(7):
        a = torch.rand(3)
    with seeded_torch(7):
        b = torch.rand(3)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(torch.random.get_rng_state(), before)
    X, y = _data()
    first = RFCNNClassifier(**FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(
        RFCNNClassifier(**FAST).fit(X, y).predict_proba(X), first
    )


def test_the_optimizer_step_is_torchs_fused_one_unless_net_params_choose():
    X, y = _data()
    for optimizer in ("adam", "adamw"):
        clf = RFCNNClassifier(**FAST, optimizer=optimizer).fit(X, y)
        assert clf.net_.optimizer_.defaults["fused"] is True
    chosen = RFCNNClassifier(**FAST, net_params={"optimizer__foreach": True})
    defaults = chosen.fit(X, y).net_.optimizer_.defaults
    assert defaults["foreach"] is True and not defaults["fused"]
    off = RFCNNClassifier(**FAST, net_params={"optimizer__fused": False}).fit(X, y)
    assert not off.net_.optimizer_.defaults["fused"]


def test_cpu_passes_keep_freed_memory_training_hands_it_back(monkeypatch):
    from sklearn_rfcnn.estimators import _net

    blocks = []

    @contextlib.contextmanager
    def recording(enabled=True, release=True):
        blocks.append((enabled, release, torch.is_inference_mode_enabled()))
        yield

    monkeypatch.setattr(_net, "keep_freed_memory", recording)
    monkeypatch.setattr(_net, "release_freed_memory", lambda: blocks.append("now"))
    X, y = _data()
    clf = RFCNNClassifier(**FAST, crop_frames=8).fit(X, y)
    # a whole fit first hands back what an earlier training left, then runs
    # in one block that asks for a release
    assert blocks == ["now", (True, True, False)]
    clf.partial_fit(X, y)  # keeps what the previous call left
    clf.predict_proba(X)  # windows (crop_frames)
    clf.set_params(crop_frames=None).predict_proba(X)  # whole clips
    # inference keeps the memory for the next call; inference_mode is entered
    # inside the block
    assert blocks[2:] == [(True, True, False)] + [(True, False, False)] * 2
    clf.fit(X, y)
    assert blocks[-2:] == ["now", (True, True, False)]
    # on a GPU the host allocator is not touched
    gpu = types.SimpleNamespace(device="cuda:0")
    with _net._RFCNNNet._keep_freed_memory(gpu, release=True):
        assert blocks[-1][:2] == (False, True)
    _net._RFCNNNet.release_freed_memory(gpu)
    assert blocks[-1] != "now"


def test_keeping_freed_memory_changes_no_output(monkeypatch):
    from sklearn_rfcnn.utils._malloc import KEEP_FREED_MEMORY_ENV

    X, y = _data()
    kept = RFCNNClassifier(**FAST).fit(X, y).predict_proba(X)
    monkeypatch.setenv(KEEP_FREED_MEMORY_ENV, "0")  # glibc's allocator as it is
    plain = RFCNNClassifier(**FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(plain, kept)
