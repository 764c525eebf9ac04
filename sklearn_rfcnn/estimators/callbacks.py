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
import os
import sys
from numbers import Number

import torch
from skorch.callbacks import Callback, LRScheduler, PrintLog
from skorch.utils import Ansi
from tabulate import tabulate
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, update_bn

from sklearn_rfcnn.estimators._data import _BucketBatchSampler, _train_loader

__all__ = [
    "LRSchedule",
    "ScientificPrintLog",
    "StochasticWeightAveraging",
    "refresh_batch_norm",
]

#: Fractions of training where the paper's schedule starts and ends its
#: decay: epochs 50 and 250 of the reference configuration's 350.
PAPER_DECAY_START = 50 / 350
PAPER_DECAY_END = 250 / 350


class LRSchedule(LRScheduler):
    """Learning rate over training: a warm-up, then cosine, linear or constant.

    Three shapes, all scaled to ``max_epochs``:

    * ``"cosine"``: after the warm-up, a half cosine from ``lr`` down to
      ``floor * lr`` at the end of the last epoch, updated before every
      training batch.
    * ``"linear"``: the paper's schedule.  The reference configuration trains
      350 epochs at ``lr`` until epoch 50, decays linearly towards 0 until
      epoch 250, and then stays at ``lr / 100``; here the corners are
      fractions of ``max_epochs`` (``decay_start=1/7``, ``decay_end=5/7``) and
      the rate is set once per epoch.
    * ``"constant"``: ``lr`` throughout (after the warm-up).

    For epoch ``e`` of the ``"linear"`` schedule (counted from 0) the factor
    applied to ``lr`` is::

        1                                     e <  s
        max(floor, 1 - (e - s) / (E - s))     s <= e < E
        floor                                 e >= E

    with ``s = decay_start * max_epochs`` and ``E = decay_end * max_epochs``.
    The warm-up, when ``warmup > 0``, rises linearly from ``lr / warmup_steps``
    over the first ``warmup * max_epochs`` epochs and is updated per batch.
    Epochs past ``max_epochs`` (``partial_fit``) stay at the floor (cosine
    and linear).  The rate at the start of every epoch is recorded in the
    history as ``"lr"``.

    It is skorch's :class:`~skorch.callbacks.LRScheduler` over a
    :class:`torch.optim.lr_scheduler.LambdaLR` stepped after every training
    batch, whose factor is a function of the fraction of training done; the
    number of batches per epoch is read from the training data at the start
    of every epoch.  It works on any skorch net.

    Parameters
    ----------
    max_epochs : int >= 1
        The length of training the schedule is scaled to.
    kind : {"cosine", "linear", "constant"}, default="linear"
        Shape of the schedule.
    decay_start, decay_end : float in [0, 1], default=1/7, 5/7
        Where the ``"linear"`` decay starts and ends, as fractions of
        ``max_epochs``.
    floor : float in [0, 1], default=0.01
        Smallest factor (the end of the cosine and of the linear decay).
    warmup : float in [0, 1), default=0.0
        Fraction of ``max_epochs`` over which the rate rises linearly to
        ``lr``.

    Examples
    --------
    >>> sched = LRSchedule(max_epochs=7)
    >>> [round(sched.factor(e), 2) for e in range(8)]
    [1.0, 1.0, 0.75, 0.5, 0.25, 0.01, 0.01, 0.01]
    >>> cos = LRSchedule(max_epochs=10, kind="cosine", warmup=0.1, floor=0.0)
    >>> [round(cos.factor_at(p), 3) for p in (0.05, 0.1, 0.55, 1.0)]
    [0.5, 1.0, 0.5, 0.0]
    """

    def __init__(
        self,
        max_epochs,
        kind="linear",
        decay_start=PAPER_DECAY_START,
        decay_end=PAPER_DECAY_END,
        floor=0.01,
        warmup=0.0,
    ):
        super().__init__(policy=LambdaLR, event_name=None, step_every="batch")
        self.max_epochs = max_epochs
        self.kind = kind
        self.decay_start = decay_start
        self.decay_end = decay_end
        self.floor = floor
        self.warmup = warmup

    @property
    def kwargs(self):
        # the only argument of the torch scheduler (skorch would pass them all)
        return {"lr_lambda": self._lr_lambda}

    def factor(self, epoch):
        """The multiplier of the base learning rate at the start of ``epoch``."""
        return self.factor_at(epoch / self.max_epochs, epoch=epoch)

    def factor_at(self, progress, epoch=None):
        """The multiplier at ``progress`` (epochs done / ``max_epochs``).

        ``epoch`` is the current epoch index; the ``"linear"`` schedule is
        a function of it (a step per epoch), the others of ``progress``.
        """
        if self.warmup > 0 and progress < self.warmup:
            return max(progress / self.warmup, 1e-3)
        if self.kind == "constant":
            return 1.0
        if self.kind == "cosine":
            if progress >= 1.0:
                return self.floor
            span = max(1.0 - self.warmup, 1e-12)
            t = (progress - self.warmup) / span
            return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * t))
        if epoch is None:
            epoch = math.floor(progress * self.max_epochs)
        start = self.decay_start * self.max_epochs
        end = self.decay_end * self.max_epochs
        if epoch < start:
            return 1.0
        if epoch >= end or end <= start:
            return self.floor
        return max(self.floor, 1.0 - (epoch - start) / (end - start))

    def _lr_lambda(self, step):
        epoch, within = divmod(step, self.n_batches_)
        progress = (epoch + within / self.n_batches_) / self.max_epochs
        return self.factor_at(progress, epoch=epoch)

    def initialize(self):
        super().initialize()
        self.n_batches_ = 1
        return self

    def _get_scheduler(self, net, policy, **scheduler_kwargs):
        # count batches, not epochs, so that partial_fit continues the curve
        last = self.batch_idx_ - 1 if self.batch_idx_ else -1
        for group in net.optimizer_.param_groups:  # e.g. a fresh optimizer
            group.setdefault("initial_lr", net.lr)  # after load(): resume
        return policy(net.optimizer_, last_epoch=last, **scheduler_kwargs)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.n_batches_ = _n_train_batches(net, X)
        super().on_train_begin(net, X=X, y=y, **kwargs)

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self.n_batches_ = _n_train_batches(net, dataset_train)
        net.history.record("lr", net.optimizer_.param_groups[0]["lr"])


def _n_train_batches(net, dataset):
    """Training batches per epoch (for per-batch schedules); at least 1."""
    batch_size = getattr(net, "iterator_train__batch_size", None) or net.batch_size
    lengths = getattr(dataset, "lengths", None)
    if lengths is not None:
        if getattr(net, "iterator_train", None) is _train_loader:
            # the loader's own count (computed, not drawn: no RNG moves)
            return max(len(net.get_iterator(dataset, training=True)), 1)
        sampler = _BucketBatchSampler(lengths, batch_size, merge_singletons=True)
        return max(len(sampler), 1)
    try:
        n = len(dataset)
    except TypeError:
        return 1
    return max(math.ceil(n / batch_size), 1)


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
    color : bool or "auto", default="auto"
        Colour the best values with terminal escape codes, as skorch does.
        ``"auto"``: only when ``sink`` is ``print`` and standard output is a
        terminal, and the ``NO_COLOR`` environment variable is unset; so a
        log redirected to a file or a pipe holds plain text.

    Attributes
    ----------
    color_ : bool
        Whether this training run colours its table (set by ``initialize``).

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
        color="auto",
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
        self.color = color

    def initialize(self):
        super().initialize()
        if self.color == "auto":
            isatty = getattr(sys.stdout, "isatty", None)
            self.color_ = (
                self.sink is print
                and not os.environ.get("NO_COLOR")
                and isatty is not None
                and bool(isatty())
            )
        else:
            self.color_ = bool(self.color)
        return self

    def on_epoch_end(self, net, **kwargs):
        """skorch's table, not even formatted when nothing would print it.

        With ``verbose=0`` and the default ``print`` sink the table is
        discarded; formatting it anyway (``tabulate``) cost about 2 ms an
        epoch, a measurable part of a small ``partial_fit``.  A custom sink
        still receives every table, as in skorch.
        """
        if self.sink is print and not net.verbose:
            return
        super().on_epoch_end(net, **kwargs)

    def format_row(self, row, key, color):
        if not getattr(self, "color_", True):
            # skorch colours a value whose "<key>_best" flag is set
            row = {k: v for k, v in row.items() if k != key + "_best"}
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
    statistics are recomputed with one pass over the training data in the
    net's training batches (:func:`refresh_batch_norm`, i.e.
    :func:`torch.optim.swa_utils.update_bn`), as the paper does after each
    SWA update.  Works on any skorch net.  The number of averaged snapshots
    is recorded in the history as ``"swa_n_averaged"``.

    The reference configuration averages every third epoch from epoch 250 of
    350; this callback averages every epoch from ``start_epoch``.

    Parameters
    ----------
    start_epoch : int >= 0
        First epoch whose weights enter the average.
    """

    def __init__(self, start_epoch):
        self.start_epoch = start_epoch

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
            refresh_batch_norm(net, net.get_dataset(X, y))


def _has_batch_norm(module):
    return any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules()
    )


def _inputs(net, dataset):
    """The input tensors of ``dataset`` in training batches, on the net's device."""
    iterator = net.get_iterator(dataset, training=True)
    prepare = getattr(net, "prepare_input", None)  # the estimators' memory format
    for batch in iterator:
        Xi = batch[0] if isinstance(batch, (list, tuple)) else batch
        yield prepare(Xi) if prepare is not None else Xi.to(net.device)


def refresh_batch_norm(net, dataset):
    """Recompute the module's batch-norm statistics with one pass over ``dataset``.

    :func:`torch.optim.swa_utils.update_bn` (a cumulative average over every
    batch) on the net's training iterator, so batches are formed as in
    training (the estimators' nets merge a trailing single clip).

    Parameters
    ----------
    net : skorch.NeuralNet
        An initialised net; ``net.module_`` is updated in place.
    dataset : torch Dataset or array-like
        Training data (anything ``net.get_dataset`` accepts).
    """
    update_bn(_inputs(net, dataset), net.module_)


def _ceil_fraction(fraction, n):
    """``ceil(fraction * n)`` clipped to ``[0, n - 1]`` (a valid epoch index)."""
    return min(max(math.ceil(fraction * n - 1e-9), 0), max(n - 1, 0))
