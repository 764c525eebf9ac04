"""The public recipe callbacks, on the estimators' net and on a plain skorch net."""

import copy

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch.optim.swa_utils import update_bn

from sklearn_rfcnn import RFCNNClassifier
from sklearn_rfcnn.estimators.callbacks import (
    LRSchedule,
    ScientificPrintLog,
    StochasticWeightAveraging,
)
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS

FAST = dict(FAST_CNN_PARAMS)


class _MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 8)
        self.bn = torch.nn.BatchNorm1d(8)
        self.out = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.out(torch.relu(self.bn(self.lin(x))))


def _plain_net(callbacks, max_epochs=4):
    return NeuralNetClassifier(
        _MLP,
        max_epochs=max_epochs,
        lr=0.1,
        batch_size=10,
        train_split=None,
        callbacks=callbacks,
        optimizer=torch.optim.SGD,
        verbose=0,
    )


@pytest.fixture(scope="module")
def tabular():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    return X, y


def test_lr_schedule_on_a_plain_skorch_net(tabular):
    X, y = tabular
    torch.manual_seed(0)
    net = _plain_net([("sched", LRSchedule(4, kind="cosine", warmup=0.25, floor=0.0))])
    seen = []
    net.callbacks.append(("spy", _LRSpy(seen)))
    net.fit(X, y)
    sched = LRSchedule(4, kind="cosine", warmup=0.25, floor=0.0)
    expected = [0.1 * sched.factor_at(i / 16) for i in range(16)]
    np.testing.assert_allclose(seen, expected, rtol=1e-6)
    np.testing.assert_allclose(net.history[:, "lr"], expected[::4], rtol=1e-6)


class _LRSpy(Callback):
    """Record the learning rate of every training batch."""

    def __init__(self, seen):
        self.seen = seen

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.seen.append(net.optimizer_.param_groups[0]["lr"])


def test_swa_on_a_plain_skorch_net_averages_and_refreshes(tabular):
    X, y = tabular
    torch.manual_seed(0)
    net = _plain_net([("swa", StochasticWeightAveraging(start_epoch=2))])
    net.fit(X, y)
    swa = dict(net.callbacks_)["swa"]
    assert net.history[-1, "swa_n_averaged"] == 2
    # the averaged weights replaced the module's
    for p, q in zip(net.module_.parameters(), swa.averaged_.module.parameters()):
        torch.testing.assert_close(p, q)
    # and the BN statistics were recomputed over the training data
    expected = copy.deepcopy(net.module_)
    update_bn([torch.from_numpy(X[i : i + 10]) for i in range(0, 40, 10)], expected)
    torch.testing.assert_close(net.module_.bn.running_mean, expected.bn.running_mean)
    assert not torch.allclose(
        net.module_.bn.running_mean, swa.averaged_.module.bn.running_mean
    )


def test_swa_estimator_refreshes_batch_norm_from_the_averaged_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 8, 12)).astype(np.float32)
    y = np.repeat([0, 1], 16)
    X[y == 1, :4] += 1.0
    params = {**FAST, "max_epochs": 4, "mixup_alpha": 0.0, "roll": 0}
    clf = RFCNNClassifier(**params, swa=True).fit(X, y)
    swa = dict(clf.net_.callbacks_)["swa"]
    assert [v for v in clf.history_[:, "swa_n_averaged"] if v][-1] >= 1
    module = clf.net_.module_
    for p, q in zip(module.parameters(), swa.averaged_.module.parameters()):
        torch.testing.assert_close(p, q)
    bns = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [
        m for m in swa.averaged_.module.modules() if isinstance(m, torch.nn.BatchNorm2d)
    ]
    # refreshed: not the statistics the averaged copy carried
    assert not all(
        torch.allclose(a.running_mean, b.running_mean) for a, b in zip(bns, before)
    )
    # one fresh pass over the 32 training clips (4 batches), not the 16
    # batches of ordinary training
    assert all(int(m.num_batches_tracked) == 4 for m in bns)
    # the stem's BN sees conv(x) whatever the batches: its mean is recomputable
    recomputed = copy.deepcopy(module)
    batches = [torch.from_numpy(X[i : i + 8, None]) for i in range(0, 32, 8)]
    update_bn(batches, recomputed)
    again = [m for m in recomputed.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    torch.testing.assert_close(bns[0].running_mean, again[0].running_mean)


def test_scientific_print_log_on_a_plain_net(tabular, capsys):
    X, y = tabular
    net = _plain_net([("sched", LRSchedule(2, kind="constant"))], max_epochs=2)
    net.set_params(callbacks__print_log=ScientificPrintLog(), verbose=1)
    net.fit(X, y)
    out = capsys.readouterr().out
    assert "1.00e-01" in out


def test_print_log_colours_only_a_terminal(monkeypatch, capsys):
    """No escape codes in a redirected log; skorch's colours on a terminal."""
    import io

    from sklearn_rfcnn.estimators.callbacks import ScientificPrintLog

    row = {"epoch": 1, "lr": 1e-3, "train_loss": 0.5, "train_loss_best": True}

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[" not in ScientificPrintLog().initialize().table(row)  # capsys
    assert "\x1b[" in ScientificPrintLog(color=True).initialize().table(row)
    assert "\x1b[" not in ScientificPrintLog(color=False).initialize().table(row)
    monkeypatch.setattr("sys.stdout", Terminal())
    log = ScientificPrintLog().initialize()
    assert log.color_ and "\x1b[" in log.table(row)
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in ScientificPrintLog().initialize().table(row)
    # the plain table keeps the values
    assert "0.5000" in ScientificPrintLog(color=False).initialize().table(row)
