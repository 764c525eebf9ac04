"""Data-parallel training through Hugging Face Accelerate (private).

``RFCNNClassifier(distributed="accelerate")`` (or ``RFCNNEmbedder``) trains
one model over the processes of an Accelerate launch; every process runs the
same script with the same data, and the net shards each batch::

    # train.py
    from sklearn_rfcnn import RFCNNClassifier
    clf = RFCNNClassifier(distributed="accelerate", batch_size=64,
                          random_state=0).fit(X, y)
    clf.save("model")          # written by the main process only

    $ accelerate launch --multi_gpu --num_processes 4 train.py  # 4 GPUs (NCCL)
    $ torchrun --standalone --nproc_per_node 2 train.py         # torch's launcher

With ``device="cpu"`` (or on a machine without GPUs) the processes are CPU
processes talking over gloo: ``torchrun --standalone --nproc_per_node 2``, or
``accelerate launch --multi_gpu --num_processes 2`` on a machine without GPUs
(the tests use ``torchrun``).  On one machine
``accelerate launch --cpu --num_processes 2`` starts a *single* process:
Accelerate's multi-CPU launch runs ``mpirun`` with ``--mpirun_hostfile``.  A
cluster is set up once with ``accelerate config`` (machines, GPUs per
machine, NCCL between GPUs).  Run without a launcher the same script trains
in one process, exactly as with ``distributed=None``.

:class:`_AcceleratedRFCNNNet` is skorch's
:class:`~skorch.hf.AccelerateMixin` on the estimators' own
:class:`~._net._RFCNNNet`; it keeps the RF-CNN training step (augmentations,
mixup, class weights, masks, autocast precision, GradScaler) and takes from
Accelerate only the prepared (DistributedDataParallel) module and optimizer,
``accelerator.backward`` and ``accelerator.accumulate``.  What it changes:

* **Batches.**  ``batch_size`` is the *global* batch: process 0 draws the
  epoch's batches exactly as a one-process fit would (from the same seeded
  RNG) and broadcasts them; each process trains on its contiguous part of
  every batch (:class:`~._data._ShardBatchSampler`; parts differ by at most
  one clip), so the parts of a step together are the one-process batch.
* **Loss.**  Each process divides its weighted loss sum by the *global*
  weight sum (one all-reduce of a scalar per step) times the number of
  processes, so that DDP's gradient average is exactly the gradient of the
  one-process loss of the whole batch, with sample weights, masks and
  uneven parts too.  The history's ``train_loss`` (per batch and per epoch)
  and ``train_batch_size`` are global (reduced over processes) on every
  process; ``train_process_batch_size`` is the clips this process trained on.
* **Validation** (the internal hold-out, early stopping) is not sharded:
  every process evaluates the whole hold-out with the same weights and
  gets the same ``valid_loss``, so early stopping stops them together.
* **Augmentation draws** come from one Generator per process (derived from
  the shared seed and the process index), so the parts of a batch are not
  rolled or mixed alike; with a single process they are the net's ``rng``,
  and a one-process accelerated fit equals the plain fit.
* **Batch normalisation** normalises with per-process batch statistics (no
  SyncBatchNorm: torch's runs on GPUs only); DDP broadcasts process 0's
  running statistics before every forward pass, and at the end of training
  they are broadcast once more, so every process ends with identical
  weights *and* statistics.
* **After training** the module is unwrapped (skorch's
  ``unwrap_after_train=True``): prediction runs locally in each process; a
  later ``partial_fit`` wraps it again.
* Accelerate's own mixed precision and device placement are off
  (``Accelerator(mixed_precision="no", device_placement=False)``): the
  estimator's ``precision`` and ``device`` stay in charge, each process on
  its ``accelerator.device``.

A net holding an accelerator cannot be pickled: save the estimator with
``save(path)`` (only the main process writes); ``load`` gives a plain
single-process estimator that needs neither Accelerate nor a process group.
"""

import numpy as np
import torch
from skorch import NeuralNet
from skorch.hf import AccelerateMixin

from sklearn_rfcnn.estimators._data import _train_loader
from sklearn_rfcnn.estimators._net import _n_clips, _RFCNNNet
from sklearn_rfcnn.exceptions import ParameterError

__all__ = []

#: Install hint of the optional dependency.
INSTALL_HINT = "pip install sklearn-rfcnn[accelerate]"


def make_accelerator(device):
    """An :class:`accelerate.Accelerator` for the estimator parameter ``device``.

    ``"cpu"`` forces CPU processes (gloo); ``"auto"`` lets Accelerate choose
    (a GPU per process when there are GPUs); any other device must be of
    the type Accelerate chose.  Accelerate's mixed precision and device
    placement are off: the net casts and places itself.

    Returns
    -------
    accelerator : accelerate.Accelerator
    device : str
        The device of this process (``accelerator.device``).
    """
    try:
        from accelerate import Accelerator
    except ImportError as exc:
        raise ImportError(
            "distributed='accelerate' needs Hugging Face Accelerate, which is "
            f"not installed; install it with `{INSTALL_HINT}`."
        ) from exc
    requested = str(device)
    accelerator = Accelerator(
        cpu=requested.startswith("cpu"),
        mixed_precision="no",
        device_placement=False,
    )
    chosen = accelerator.device
    if requested != "auto" and torch.device(requested).type != chosen.type:
        raise ParameterError(
            f"device={requested!r} with distributed='accelerate', but Accelerate "
            f"placed this process on {str(chosen)!r}; use device='auto' (each "
            "process on its accelerator.device) or device='cpu'."
        )
    return accelerator, str(chosen)


def write_on_main_process(accelerator, write):
    """Run ``write()`` on the main process only; every process returns after it.

    After data-parallel training every process holds the same model and calls
    ``save`` (or :func:`~sklearn_rfcnn.save_pipeline`); one writer avoids
    processes racing for the same folder, and the barriers make the folder
    complete on return everywhere.  With one process (or ``accelerator``
    None) ``write`` just runs.
    """
    if accelerator is None or accelerator.num_processes == 1:
        return write()
    accelerator.wait_for_everyone()
    try:
        return write() if accelerator.is_main_process else None
    finally:
        accelerator.wait_for_everyone()


def _discard(*args, **kwargs):
    """A print that prints nothing (the epoch table with ``verbose=0``)."""


def _print_sink(accelerator, verbose):
    """``accelerator.print`` (main process only) when ``verbose``, else nothing.

    skorch's ``PrintLog`` prints through any sink other than ``print``
    whatever the net's ``verbose``.
    """
    return accelerator.print if verbose else _discard


class _AcceleratedRFCNNNet(AccelerateMixin, _RFCNNNet):
    """:class:`~._net._RFCNNNet` trained data-parallel through Accelerate.

    See the module docstring.  Takes skorch's ``accelerator`` and
    ``unwrap_after_train`` besides the parameters of ``_RFCNNNet``.
    """

    # -- the RF-CNN step, with Accelerate's backward ----------------------
    # AccelerateMixin's own step is infer + get_loss: it would skip the
    # augmentations and the weighted, masked loss.
    train_step_single = _RFCNNNet.train_step_single

    def _n_processes(self):
        return int(self.accelerator.num_processes)

    def _backward(self, loss):
        self.accelerator.backward(loss)

    def _step_optimizer(self, step_fn):
        # the RF-CNN step passes None (no closure); AccelerateMixin would call it
        NeuralNet._step_optimizer(self, step_fn)

    def _train_denominator(self, den):
        """Global weight sum / processes: DDP's mean is then the global loss."""
        n = self._n_processes()
        if n == 1:
            return den
        total = den.detach().clone()
        torch.distributed.all_reduce(total)
        return total / n

    def _augment_rng(self):
        if self._n_processes() == 1:
            return self.rng
        return self.process_rng_

    # -- data --------------------------------------------------------------
    def get_iterator(self, dataset, training=False):
        """Training: this process's part of every batch; else the whole data.

        The estimators' training loader is sharded by
        :class:`~._data._ShardBatchSampler`; another ``iterator_train``
        (through ``net_params``) is sharded by ``accelerator.prepare``.
        Validation and inference loaders are not sharded.
        """
        if not training:
            return NeuralNet.get_iterator(self, dataset, training=False)
        if self.iterator_train is not _train_loader:
            return AccelerateMixin.get_iterator(self, dataset, training=True)
        kwargs = self.get_params_for("iterator_train")
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        kwargs["shards"] = (self._n_processes(), int(self.accelerator.process_index))
        return _train_loader(dataset, **kwargs)

    def evaluation_step(self, batch, training=False):
        # inference batches are not sharded: nothing to gather
        return NeuralNet.evaluation_step(self, batch, training=training)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """The epoch loop, recording global (reduced) training losses and sizes."""
        if not training:
            return super().run_single_epoch(
                iterator, training, prefix, step_fn, **fit_params
            )
        if iterator is None:
            return
        n = self._n_processes()
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            local = _n_clips(batch)
            loss, size = step["loss"].item(), local
            if n > 1:
                totals = torch.tensor(
                    [loss, float(local)], dtype=torch.float64, device=self.device
                )
                torch.distributed.all_reduce(totals)
                loss, size = totals[0].item() / n, round(totals[1].item())
            self.history.record_batch(prefix + "_loss", loss)
            self.history.record_batch(prefix + "_batch_size", size)
            self.history.record_batch(prefix + "_process_batch_size", local)
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        self.history.record(prefix + "_batch_count", batch_count)

    # -- wrapping and unwrapping -------------------------------------------
    def _initialize_accelerator(self):
        """Prepare the module(s) and optimizer(s); wrap again after an unwrap.

        The criterion is not prepared (skorch's mixin would): the RF-CNN loss
        is computed functionally (:meth:`mixed_loss`), and DDP refuses a
        module without parameters.  An optimizer is prepared once.
        """
        if self._wrapped_with_accelerator:
            return self
        from accelerate.optimizer import AcceleratedOptimizer

        with self._current_init_context("module"):
            for name in self._modules:
                module = getattr(self, name + "_")
                if isinstance(module, torch.nn.Module) and any(
                    p.requires_grad for p in module.parameters()
                ):
                    setattr(self, name + "_", self.accelerator.prepare(module))
        with self._current_init_context("optimizer"):
            for name in self._optimizers:
                optimizer = getattr(self, name + "_")
                if isinstance(optimizer, torch.optim.Optimizer) and not isinstance(
                    optimizer, AcceleratedOptimizer
                ):
                    setattr(self, name + "_", self.accelerator.prepare(optimizer))
        self._wrapped_with_accelerator = True
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Wrap the module again after an unwrap; per-process augmentation RNG."""
        self._initialize_accelerator()  # a no-op unless partial_fit after a fit
        n = self._n_processes()
        if n > 1:
            # the shared rng moves alike on every process (so later fits draw
            # the same seeds everywhere); the draws of each process differ
            seed = int(self.rng.integers(np.iinfo(np.int64).max))
            rank = int(self.accelerator.process_index)
            self.process_rng_ = np.random.default_rng([seed, rank])
            if rank > 0:  # e.g. shake-shake draws; process 0 keeps its stream
                torch.manual_seed(int(self.process_rng_.integers(2**62)))
        return super().on_train_begin(net, X=X, y=y, **kwargs)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # unwrapping waits until the callbacks' on_train_end (early stopping's
        # best weights, saved from the wrapped module) ran: see notify
        self.accelerator.wait_for_everyone()
        return NeuralNet.on_train_end(self, net, X=X, y=y, **kwargs)

    def notify(self, method_name, **cb_kwargs):
        super().notify(method_name, **cb_kwargs)
        if method_name == "on_train_end":
            self._broadcast_buffers()
            if self.unwrap_after_train:
                self._unwrap_accelerator()

    def _broadcast_buffers(self):
        """Process 0's buffers (batch-norm statistics) on every process."""
        if self._n_processes() == 1:
            return
        for name in self._modules:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module):
                for buffer in module.buffers():
                    torch.distributed.broadcast(buffer.data, src=0)

    def __getstate__(self):
        raise TypeError(
            "a net trained with distributed='accelerate' holds a Hugging Face "
            "Accelerate accelerator and cannot be pickled or deep-copied; save "
            "the estimator with est.save(path) (only the main process writes) and "
            "read it with Estimator.load(path), which gives a plain "
            "single-process estimator."
        )
