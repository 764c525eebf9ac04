"""skorch callbacks of the CP-ResNet training recipe.

:class:`~sklearn_rfcnn.RFCNNClassifier` adds these to the net it builds; they
are public so that a hand-built skorch net can reuse them.

* :class:`LRSchedule` -- the paper's linear learning-rate schedule (flat, then
  linear decay, then a floor), scaled to any number of epochs, or a constant
  rate; the rate of every epoch is recorded in the history as ``"lr"``.
* :class:`ScientificPrintLog` -- skorch's epoch table with the learning rate
  in scientific notation (``1.00e-05``, not ``0.0000``, late in the schedule).
* :class:`StochasticWeightAveraging` -- averages the weights over the last
  epochs and recomputes batch-norm statistics on the training data at the end
  (:mod:`torch.optim.swa_utils`).
"""

import math
from numbers import Number

import torch
from skorch.callbacks import Callback, PrintLog
from skorch.utils import Ansi
from tabulate import tabulate
from torch.optim.swa_utils import AveragedModel

from sklearn_rfcnn.estimators._net import _BucketBatchSampler

__all__ = ["LRSchedule", "ScientificPrintLog", "StochasticWeightAveraging"]

#: Fractions of training where the paper's schedule starts and ends its
#: decay: epochs 50 and 250 of the reference configuration's 350.
PAPER_DECAY_START = 50 / 350
PAPER_DECAY_END = 250 / 350


class LRSchedule(Callback):
    """Per-epoch learning rate: the paper's linear schedule or a constant.

    The reference configuration trains 350 epochs at ``lr`` until epoch 50,
    decays linearly towards 0 until epoch 250, and then stays at ``lr / 100``.
    Here the two corner points are fractions of ``max_epochs`` (``1/7`` and
    ``5/7``), and the decay never goes below the floor, so for epoch ``e``
    (counted from 0) the factor applied to ``lr`` is::

        1                                     e <  s
        max(floor, 1 - (e - s) / (E - s))     s <= e < E
        floor                                 e >= E

    with ``s = decay_start * max_epochs`` and ``E = decay_end * max_epochs``.
    Epochs past ``max_epochs`` (``partial_fit``) stay at the floor.

    Parameters
    ----------
    max_epochs : int >= 1
        The length of training the schedule is scaled to.
    kind : {"linear", "constant"}, default="linear"
        ``"constant"`` keeps the factor at 1 (and still records ``"lr"``).
    decay_start, decay_end : float in [0, 1], default=1/7, 5/7
        Where the decay starts and ends, as fractions of ``max_epochs``.
    floor : float in [0, 1], default=0.01
        Smallest factor.

    Examples
    --------
    >>> sched = LRSchedule(max_epochs=7)
    >>> [round(sched.factor(e), 2) for e in range(8)]
    [1.0, 1.0, 0.75, 0.5, 0.25, 0.01, 0.01, 0.01]
    """

    def __init__(
        self,
        max_epochs,
        kind="linear",
        decay_start=PAPER_DECAY_START,
        decay_end=PAPER_DECAY_END,
        floor=0.01,
    ):
        self.max_epochs = max_epochs
        self.kind = kind
        self.decay_start = decay_start
        self.decay_end = decay_end
        self.floor = floor

    def factor(self, epoch):
        """The multiplier of the base learning rate at ``epoch`` (from 0)."""
        if self.kind == "constant":
            return 1.0
        start = self.decay_start * self.max_epochs
        end = self.decay_end * self.max_epochs
        if epoch < start:
            return 1.0
        if epoch >= end or end <= start:
            return self.floor
        return max(self.floor, 1.0 - (epoch - start) / (end - start))

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1
        lr = net.lr * self.factor(epoch)
        for group in net.optimizer_.param_groups:
            group["lr"] = lr
        net.history.record("lr", lr)


class ScientificPrintLog(PrintLog):
    """skorch's epoch table, with some columns in scientific notation.

    :class:`skorch.callbacks.PrintLog` formats every float with ``floatfmt``
    (``".4f"``), so a learning rate of ``1e-05`` prints as ``0.0000``. This
    subclass prints the keys in ``keys_scientific`` with ``scifmt`` instead
    and leaves the recorded values untouched. :class:`~sklearn_rfcnn.RFCNNClassifier`
    and :class:`~sklearn_rfcnn.RFCNNEmbedder` use it as their ``print_log``.

    Parameters
    ----------
    keys_scientific : tuple of str, default=("lr",)
        History keys printed in scientific notation.
    scifmt : str, default=".2e"
        Format spec of those keys.
    keys_ignored, sink, tablefmt, floatfmt, stralign
        As :class:`skorch.callbacks.PrintLog`.

    Examples
    --------
    >>> log = ScientificPrintLog().initialize()
    >>> print(log.table({"epoch": 7, "lr": 1e-05, "train_loss": 0.25}))
      epoch        lr    train_loss
    -------  --------  ------------
          7  1.00e-05        0.2500
    """

    def __init__(
        self,
        keys_scientific=("lr",),
        scifmt=".2e",
        keys_ignored=None,
        sink=print,
        tablefmt="simple",
        floatfmt=".4f",
        stralign="right",
    ):
        super().__init__(
            keys_ignored=keys_ignored,
            sink=sink,
            tablefmt=tablefmt,
            floatfmt=floatfmt,
            stralign=stralign,
        )
        self.keys_scientific = keys_scientific
        self.scifmt = scifmt

    def format_row(self, row, key, color):
        value = row[key]
        if (
            key not in self.keys_scientific
            or isinstance(value, bool)
            or not isinstance(value, Number)
        ):
            return super().format_row(row, key, color)
        text = format(value, self.scifmt)
        if row.get(key + "_best"):
            text = color + text + Ansi.ENDC.value
        return text

    def table(self, row):
        headers, formatted = [], []
        for key, text in self._yield_keys_formatted(row):
            headers.append(key)
            formatted.append(text)
        # tabulate would parse "1.00e-05" back to a float and reformat it
        # with floatfmt; keep those columns as the text formatted above.
        scientific = [i for i, key in enumerate(headers) if key in self.keys_scientific]
        return tabulate(
            [formatted],
            headers=headers,
            tablefmt=self.tablefmt,
            floatfmt=self.floatfmt,
            stralign=self.stralign,
            disable_numparse=scientific,
        )


class StochasticWeightAveraging(Callback):
    """Average the weights of the last epochs; refresh batch-norm statistics.

    From epoch ``start_epoch`` (counted from 0) on, the module's weights after
    every epoch are folded into a running average
    (:class:`torch.optim.swa_utils.AveragedModel`).  At the end of training the
    averaged weights replace the module's, and the batch-norm running
    statistics are recomputed with one pass over the training data
    (:func:`torch.optim.swa_utils.update_bn`), as the paper does after each
    SWA update.  The number of averaged snapshots is recorded in the history
    as ``"swa_n_averaged"``.

    The reference configuration averages every third epoch from epoch 250 of
    350; this callback averages every epoch from ``start_epoch``.

    Parameters
    ----------
    start_epoch : int >= 0
        First epoch whose weights enter the average.
    batch_size : int >= 1, default=32
        Batch size of the batch-norm refresh pass.
    """

    def __init__(self, start_epoch, batch_size=32):
        self.start_epoch = start_epoch
        self.batch_size = batch_size

    def initialize(self):
        self.averaged_ = None
        return self

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history) - 1
        if epoch < self.start_epoch:
            return
        if self.averaged_ is None:
            self.averaged_ = AveragedModel(net.module_)
        self.averaged_.update_parameters(net.module_)
        net.history.record("swa_n_averaged", int(self.averaged_.n_averaged.item()))

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if self.averaged_ is None:
            return
        net.module_.load_state_dict(self.averaged_.module.state_dict())
        if X is not None and _has_batch_norm(net.module_):
            _refresh_batch_norm(net, X, self.batch_size)


def _has_batch_norm(module):
    return any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules()
    )


@torch.no_grad()
def _refresh_batch_norm(net, dataset, batch_size):
    """Recompute BN running statistics as a cumulative average over ``dataset``."""
    module = net.module_
    momenta = {}
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            momenta[m] = m.momentum
            m.momentum = None  # cumulative moving average
    was_training = module.training
    module.train()
    sampler = _BucketBatchSampler(dataset.lengths, batch_size, merge_singletons=True)
    for indices in sampler:
        Xi = torch.stack([dataset[i][0] for i in indices])
        # the estimators' net also applies its memory format (channels_last)
        prepare = getattr(net, "prepare_input", None)
        Xi = prepare(Xi) if prepare is not None else Xi.to(net.device)
        with net._autocast():
            module(Xi)
    for m, momentum in momenta.items():
        m.momentum = momentum
    module.train(was_training)


def _ceil_fraction(fraction, n):
    """``ceil(fraction * n)`` clipped to ``[0, n - 1]`` (a valid epoch index)."""
    return min(max(math.ceil(fraction * n - 1e-9), 0), max(n - 1, 0))
