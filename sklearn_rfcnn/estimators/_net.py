"""The private skorch net the estimators own.

Nothing here is public: :class:`~sklearn_rfcnn.RFCNNClassifier` and
:class:`~sklearn_rfcnn.RFCNNEmbedder` build a :class:`_RFCNNNet` in ``fit`` and
keep it as ``net_``.  The net differs from skorch's ``NeuralNet`` in these ways:

* the training step applies the augmentations of :mod:`._augment` on the
  batch: a random circular roll along time (per example) and mixup with a
  per-sample ``lam = max(lam, 1 - lam)``, ``lam ~ Beta(alpha, alpha)``, that
  mixes the inputs and the *losses* (not the labels);
* the loss is a weighted mean over known entries: per-sample weights
  (``sample_weight``) and, for multi-label targets, a mask of known
  (clip, tag) pairs, so partially labelled tag matrices train correctly;
* all randomness of the augmentations comes from a numpy ``Generator`` owned
  by the net (seeded from the estimator's ``random_state``);
* forward passes run under :func:`torch.autocast` when mixed precision is on;
  float32 channels-last training on an AVX2 CPU without AVX-512 computes the
  weight gradients of wide convolutions in NCHW
  (:mod:`~sklearn_rfcnn.utils._conv_grad`);
* with ``channels_last`` the module's 4-D weights and every input batch use
  the ``torch.channels_last`` memory format (faster convolutions on CPU and
  with cuDNN); inference passes may use another layout
  (``inference_channels_last``), the module being converted when the phase
  changes (:meth:`_RFCNNNet._use_layout`); :meth:`_RFCNNNet.prepare_input`
  is the single place where a batch is moved to the device and given the
  module's memory format.
* mixed-precision inference passes run a copy of the module with every
  batch norm folded into the convolution before it
  (:func:`~sklearn_rfcnn.models._fold.inference_module`, cached until
  the weights change); float32 inference runs the module as it is;
* training and inference on the CPU run in
  :func:`~sklearn_rfcnn.utils._malloc.keep_freed_memory`, so that glibc
  keeps the buffers a batch frees for the next one instead of mapping them
  afresh (training hands the free memory back once no pass has run for
  10 s, ``RELEASE_DELAY_S``).

Batches come from the loaders of :mod:`._data`: whole clips of one length,
random crops (``crop_frames``), or length-sorted clips cropped to the shortest
of their batch.  With ``crop_frames`` the validation batches hold the sliding
windows of whole clips (targets carry a ``"clip"`` index): the validation step
aggregates the windows' logits per clip (:func:`aggregate_windows`, the
net's ``aggregate``) before the loss, and :meth:`_RFCNNNet.forward_windows`
does the same for inference -- one windowing policy for both.
"""

import contextlib
import functools

import numpy as np
import torch
from skorch import NeuralNet
from skorch.utils import TeeGenerator

from sklearn_rfcnn.estimators._augment import AUGMENTATIONS, draw_mixup
from sklearn_rfcnn.estimators._data import _BucketBatchSampler
from sklearn_rfcnn.estimators._length import aggregate_windows
from sklearn_rfcnn.estimators.callbacks import ScientificPrintLog
from sklearn_rfcnn.models._fold import inference_module
from sklearn_rfcnn.utils._conv_grad import nchw_weight_grads, nchw_weight_grads_pay
from sklearn_rfcnn.utils._malloc import keep_freed_memory, release_freed_memory

__all__ = []


def _inference_pass(method):
    """Run a net's inference pass in ``inference_mode``, keeping freed buffers.

    On the CPU the buffers it frees stay mapped for the next call
    (:meth:`_RFCNNNet._keep_freed_memory` without release).
    """

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._keep_freed_memory(release=False), torch.inference_mode():
            return method(self, *args, **kwargs)

    return run


def _on_cpu(device):
    """Whether ``device`` is the CPU (where the host allocator is tuned)."""
    return torch.device(device).type == "cpu"


def _embed(module, x):
    """Pooled embedding of a batch: ``forward_head(map, pre_logits=True)``."""
    return module.forward_head(module.forward_features(x), pre_logits=True)


class _RFCNNNet(NeuralNet):
    """skorch net with the RF-CNN training step (see the module docstring).

    Extra parameters (stored as plain attributes, all optional):

    multilabel : bool
        Sigmoid + BCE over an indicator matrix instead of softmax CE.
    mixup_alpha : float
        Beta parameter; 0 switches mixup off.
    roll : int
        Largest circular time shift in frames; 0 switches it off.
    freq_mask, time_mask : int or float
        Widest SpecAugment mask in frequency bins / frames (an int) or as a
        share of the axis (a float); 0 switches it off.
    rng : numpy.random.Generator
        Source of every augmentation draw.
    amp_dtype : torch.dtype or None
        Autocast dtype (``torch.bfloat16``/``torch.float16``) or None.
    channels_last : bool
        Keep the module in ``torch.channels_last`` memory format (converted
        whenever skorch (re)builds it) and give every input batch that format.
    inference_channels_last : bool or None
        The memory format of inference passes (:meth:`forward_clips`,
        :meth:`forward_windows`); None: that of training.  When it differs,
        the module's 4-D weights are converted in place (the parameters stay
        the same objects, so the optimizer keeps them) when the phase
        changes: before inference, and at the start of training
        (``on_train_begin``).
    class_weight : array-like of shape (n_outputs,) or None
        Per-class weight of each sample's loss (multi-class), or weight of the
        positive entries of each tag (multi-label, as ``pos_weight``).
    aggregate : {"mean", "max"}
        How windowed validation and inference combine a clip's window logits.
    """

    def __init__(
        self,
        module,
        *args,
        multilabel=False,
        mixup_alpha=0.0,
        roll=0,
        freq_mask=0,
        time_mask=0,
        rng=None,
        amp_dtype=None,
        channels_last=False,
        inference_channels_last=None,
        class_weight=None,
        aggregate="mean",
        **kwargs,
    ):
        super().__init__(module, *args, **kwargs)
        self.class_weight = class_weight
        self.aggregate = aggregate
        self.multilabel = multilabel
        self.mixup_alpha = mixup_alpha
        self.roll = roll
        self.freq_mask = freq_mask
        self.time_mask = time_mask
        self.rng = rng
        self.amp_dtype = amp_dtype
        self.channels_last = channels_last
        self.inference_channels_last = inference_channels_last

    def initialize_module(self):
        """skorch's module set-up, then the memory format of ``channels_last``.

        skorch calls this on :meth:`initialize` and whenever a ``module__*``
        parameter changes; it then moves the module to the device, which keeps
        the memory format.  Loading weights (``load_state_dict``: early
        stopping's best weights, SWA, :meth:`load`) copies into the existing
        tensors and keeps it too.
        """
        super().initialize_module()
        if self.channels_last:
            self.module_ = self.module_.to(memory_format=torch.channels_last)
        self._module_channels_last = bool(self.channels_last)
        return self

    def _module_layout(self):
        """Whether the module's weights are in channels-last format now."""
        # a net pickled before the phases could differ has no record
        return getattr(self, "_module_channels_last", bool(self.channels_last))

    def _use_layout(self, inference):
        """Put the module in the memory format of a phase (a no-op if it is).

        ``Module.to(memory_format=...)`` converts the 4-D parameters (and
        their gradients) in place through ``param.data``: the values are
        copied exactly and the parameters stay the objects the optimizer
        holds.  The copies are made outside inference mode (the inference
        passes run in it), so they stay ordinary tensors that autograd,
        ``copy.deepcopy`` and the ONNX export accept.
        """
        want = bool(self.channels_last)
        # (a net pickled before the phases could differ has no such attribute)
        inference_layout = getattr(self, "inference_channels_last", None)
        if inference and inference_layout is not None:
            want = bool(inference_layout)
        if self._module_layout() != want:
            fmt = torch.channels_last if want else torch.contiguous_format
            with torch.inference_mode(False):
                self.module_.to(memory_format=fmt)
            self._module_channels_last = want

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Back to the training layout after inference in another one."""
        self._use_layout(inference=False)
        return super().on_train_begin(net, X=X, y=y, **kwargs)

    def _keep_freed_memory(self, release):
        """Freed buffers stay mapped during a CPU pass (:mod:`~.utils._malloc`)."""
        return keep_freed_memory(_on_cpu(self.device), release=release)

    def release_freed_memory(self):
        """Hand back now what an earlier CPU training left to release.

        Called before a whole ``fit``: its heap then grows from pages handed
        back rather than around the buffers the previous call kept (which
        raised the peak of a float32 fit at the paper's width from 2.9 to
        3.3 GB, ``benchmarks/bench_malloc.py``); ``partial_fit`` calls in a
        row keep them.
        """
        if _on_cpu(self.device):
            release_freed_memory()

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """skorch's training, with freed buffers reused from batch to batch.

        ``fit`` calls it too.  The heap's free memory is handed back 10 s
        after training ends, unless another pass starts before then
        (:data:`~sklearn_rfcnn.utils._malloc.RELEASE_DELAY_S`); inference
        passes keep theirs for the next call.
        """
        with self._keep_freed_memory(release=True):
            return super().partial_fit(X, y, classes, **fit_params)

    def get_default_callbacks(self):
        """skorch's defaults, with the epoch table printing ``lr`` legibly."""
        return [
            (name, ScientificPrintLog() if name == "print_log" else cb)
            for name, cb in super().get_default_callbacks()
        ]

    def _set_training(self, training=True):
        """skorch's train/eval switch, skipped where it would change nothing.

        skorch calls it once per batch; :meth:`torch.nn.Module.train` walks
        the whole module tree and sets ``training`` through
        ``Module.__setattr__`` on each of CP-ResNet's ~100 modules, about 1-3
        ms a call -- a tenth of a small network's training step.  Reading the
        flags is ~50x cheaper; a module is switched as soon as any of its
        submodules is in the other mode.
        """
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and any(
                m.training is not training for m in module.modules()
            ):
                module.train(training)

    # -- helpers ---------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        device_type = torch.device(self.device).type
        return torch.autocast(device_type=device_type, dtype=self.amp_dtype)

    def _weight_grad_mode(self):
        """:class:`~sklearn_rfcnn.utils._conv_grad.nchw_weight_grads` where it pays.

        On an AVX2 CPU without AVX-512, float32 channels-last training
        (:func:`~sklearn_rfcnn.utils._conv_grad.nchw_weight_grads_pay`); not
        with ``compile=True``, whose graph would not see it.
        """
        precision = "32" if self.amp_dtype is None else "mixed"
        if getattr(self, "compile", False) or not nchw_weight_grads_pay(
            self.device, precision, self._module_layout()
        ):
            return contextlib.nullcontext()
        return nchw_weight_grads(self.module_)

    def _inference_module(self):
        """The module that :meth:`forward_clips` and :meth:`forward_windows` run.

        :func:`~sklearn_rfcnn.models._fold.inference_module`: under mixed
        precision the copy with the batch norms folded into the convolutions
        (one pass over each map less); in float32, and with ``compile=True``,
        the module itself, so that float32 outputs stay those of earlier
        releases.
        """
        return inference_module(self.module_, self.amp_dtype)

    def prepare_input(self, Xi):
        """Move a batch ``(B, C, F, T)`` to the device in the module's memory format.

        Every forward pass of the net (training, validation, inference,
        embedding, the SWA batch-norm refresh) goes through here.
        """
        non_blocking = str(self.device).startswith("cuda")
        Xi = Xi.to(self.device, non_blocking=non_blocking)
        if Xi.ndim == 4 and self._module_layout():
            Xi = Xi.contiguous(memory_format=torch.channels_last)
        return Xi

    def _to_device(self, batch):
        non_blocking = str(self.device).startswith("cuda")
        Xi, yi = batch
        Xi = self.prepare_input(Xi)
        yi = {k: v.to(self.device, non_blocking=non_blocking) for k, v in yi.items()}
        return Xi, yi

    def _entry_losses(self, logits, target):
        """Unreduced loss per sample (multi-class) or per (sample, tag)."""
        logits = logits.float()
        if self.multilabel:
            return torch.nn.functional.binary_cross_entropy_with_logits(
                logits, target.float(), reduction="none"
            )
        return torch.nn.functional.cross_entropy(logits, target, reduction="none")

    def _entry_weights(self, yi, shape):
        w = yi["w"]
        cw = None
        if self.class_weight is not None:
            cw = torch.as_tensor(self.class_weight, device=w.device, dtype=w.dtype)
        if self.multilabel:
            w = w[:, None].expand(shape)
            if "m" in yi:
                w = w * yi["m"]
            if cw is not None:
                w = w * torch.where(yi["y"] > 0.5, cw, torch.ones_like(cw))
        elif cw is not None:
            w = w * cw[yi["y"]]
        return w

    def mixed_loss(self, logits, yi, lam=None, perm=None):
        """Weighted, masked loss, optionally mixed between partners.

        With per-sample ``lam`` and partner order ``perm`` the loss is
        ``sum(lam w L(y) + (1 - lam) w' L(y')) / sum(lam w + (1 - lam) w')``
        over every known entry, where primes denote the partner's target,
        weight and mask; without them it is ``sum(w L(y)) / sum(w)``.
        """
        num, den = self._loss_terms(logits, yi, lam, perm)
        return num / den.clamp_min(1e-12)

    def _loss_terms(self, logits, yi, lam=None, perm=None):
        """Numerator and denominator of :meth:`mixed_loss` (its weighted sums)."""
        loss = self._entry_losses(logits, yi["y"])
        weight = self._entry_weights(yi, loss.shape)
        if lam is None:
            num = (weight * loss).sum()
            den = weight.sum()
        else:
            perm = torch.as_tensor(perm, device=logits.device)
            partner = {k: v[perm] for k, v in yi.items()}
            loss_p = self._entry_losses(logits, partner["y"])
            weight_p = self._entry_weights(partner, loss_p.shape)
            lam = torch.as_tensor(lam, device=logits.device, dtype=loss.dtype)
            if loss.ndim == 2:
                lam = lam[:, None]
            num = (lam * weight * loss + (1 - lam) * weight_p * loss_p).sum()
            den = (lam * weight + (1 - lam) * weight_p).sum()
        return num, den

    def augment(self, Xi):
        """Apply the training-time augmentations, then draw mixup (see ``_augment``)."""
        rng = self._augment_rng()
        for _, augmentation in AUGMENTATIONS:
            Xi = augmentation(Xi, rng, self)
        return draw_mixup(Xi, rng, self.mixup_alpha)

    # -- hooks of data-parallel training (``_accelerate``) -------------------
    def _augment_rng(self):
        """The Generator of the augmentation draws: ``rng``."""
        return self.rng

    def _train_denominator(self, den):
        """The denominator of a training batch's loss: its own weight sum."""
        return den

    def _backward(self, loss):
        """Back-propagate a training loss (already scaled by the GradScaler)."""
        loss.backward()

    # -- skorch template methods ----------------------------------------
    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = self._to_device(batch)
        Xi, lam, perm = self.augment(Xi)
        if self._module_layout():
            # the roll (gather) and mixup may return a contiguous tensor
            Xi = Xi.contiguous(memory_format=torch.channels_last)
        with self._autocast(), self._weight_grad_mode():
            y_pred = self.module_(Xi)
        num, den = self._loss_terms(y_pred, yi, lam, perm)
        loss = num / self._train_denominator(den).clamp_min(1e-12)
        scaler = getattr(self, "grad_scaler_", None)
        self._backward(scaler.scale(loss) if scaler is not None else loss)
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is None:
            self._step_optimizer(None)
        else:
            scaler.step(self.optimizer_)
            scaler.update()
        return step

    def validation_step(self, batch, **fit_params):
        """Loss on a validation batch: whole clips, or windows aggregated per clip.

        A batch of windows (targets with a ``"clip"`` index, from the windowed
        validation loader) is run in chunks of ``batch_size`` windows; the
        logits of each clip's windows are aggregated (``aggregate``) and the
        loss is that of the clips, exactly as :meth:`forward_windows` predicts.
        """
        self._set_training(False)
        Xi, yi = self._to_device(batch)
        with torch.no_grad(), self._autocast():
            if "clip" in yi:
                size = max(int(self.batch_size), 1)
                y_pred = torch.cat(
                    [self.module_(Xi[i : i + size]) for i in range(0, len(Xi), size)]
                ).float()
                y_pred, first = aggregate_windows(y_pred, yi["clip"], self.aggregate)
                yi = {k: v[first] for k, v in yi.items() if k != "clip"}
            else:
                y_pred = self.module_(Xi)
        loss = self.mixed_loss(y_pred, yi)
        return {"loss": loss, "y_pred": y_pred}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch loop, counting *clips* per batch (``*_batch_size``).

        A windowed validation batch holds several windows per clip; the
        epoch's ``valid_loss`` (a mean over batches weighted by their size)
        must weigh clips, not windows.
        """
        if iterator is None:
            return
        deferred = [] if self._defer_batch_losses() else None
        batch_count = 0
        try:
            for batch in iterator:
                self.notify("on_batch_begin", batch=batch, training=training)
                step = step_fn(batch, **fit_params)
                loss = step["loss"].detach()
                if deferred is None:
                    loss = loss.item()
                else:
                    deferred.append((self.history[-1]["batches"][-1], loss))
                self.history.record_batch(prefix + "_loss", loss)
                self.history.record_batch(prefix + "_batch_size", _n_clips(batch))
                self.notify("on_batch_end", batch=batch, training=training, **step)
                batch_count += 1
        finally:
            if deferred:  # one read-back for the epoch, also when it stops early
                values = torch.stack([v.float() for _, v in deferred]).tolist()
                for (row, _), value in zip(deferred, values):
                    row[prefix + "_loss"] = value
        self.history.record(prefix + "_batch_count", batch_count)

    def _defer_batch_losses(self):
        """Whether batch losses are read back once per epoch (on a GPU).

        Reading each batch's loss (``.item()``) makes the host wait for the
        GPU to finish that batch before it queues the next one; on CUDA the
        losses stay on the device until the epoch ends (within the epoch the
        history's batch rows hold the 0-d loss tensors, which callbacks can
        use as numbers).  On the CPU the loss is computed when it is read.
        """
        return torch.device(self.device).type == "cuda"

    def initialize_optimizer(self, *args, **kwargs):
        super().initialize_optimizer(*args, **kwargs)
        use_scaler = self.amp_dtype == torch.float16 and str(self.device).startswith(
            "cuda"
        )
        self.grad_scaler_ = torch.amp.GradScaler("cuda") if use_scaler else None
        return self

    @_inference_pass
    def forward_clips(self, dataset, batch_size, features=False):
        """Logits (or pooled features) for every clip, in input order, float32.

        Clips are batched by length (see :func:`_bucket_loader`); the module
        runs in eval mode without gradients.
        """
        self._set_training(False)
        self._use_layout(inference=True)
        module = self._inference_module()
        pin = str(self.device).startswith("cuda")
        sampler = _BucketBatchSampler(dataset.lengths, batch_size, shuffle=False)
        lengths, counts = np.unique(dataset.lengths, return_counts=True)
        bucket_size = dict(zip(lengths.tolist(), counts.tolist()))
        order, chunks = [], []
        for indices in sampler:
            n = len(indices)
            padded = list(indices)
            if n < batch_size and bucket_size[int(dataset.lengths[indices[0]])] > n:
                # The trailing batch of a bucket is padded to the full batch size
                # so that every clip is computed in a batch of the same shape:
                # CPU kernels round differently for different batch sizes, and
                # results must not depend on the order of the clips.
                padded += [indices[-1]] * (batch_size - n)
            Xi = torch.stack([dataset[i][0] for i in padded])
            if pin:
                Xi = Xi.pin_memory()
            Xi = self.prepare_input(Xi)
            with self._autocast():
                out = _embed(module, Xi) if features else module(Xi)
            chunks.append(out[:n].float().cpu().numpy())
            order.extend(indices)
        out = np.concatenate(chunks, axis=0)
        result = np.empty_like(out)
        result[np.asarray(order)] = out
        return result

    @_inference_pass
    def forward_windows(self, dataset, batch_size, window, hop, features=False):
        """Per-window logits (or pooled features) of every clip, float32.

        Each clip is cut into the windows of
        :func:`~._length.window_starts` (tiled when shorter than ``window``);
        windows of consecutive clips fill batches of exactly ``batch_size``
        (the last one padded with copies of its last window and the padding
        discarded), so a window's output never depends on its neighbours.

        Returns
        -------
        outputs : ndarray of shape (n_windows_total, D)
        offsets : ndarray of shape (n_clips + 1,)
            Clip ``i`` owns ``outputs[offsets[i]:offsets[i + 1]]``.
        starts : list of ndarray
            First frame of each window, per clip.
        """
        self._set_training(False)
        self._use_layout(inference=True)
        module = self._inference_module()
        pin = str(self.device).startswith("cuda")

        def run(Xi):
            n = len(Xi)
            if n < batch_size:
                pad = np.repeat(Xi[-1:], batch_size - n, axis=0)
                Xi = np.concatenate([Xi, pad])
            Xi = torch.from_numpy(Xi)
            if pin:
                Xi = Xi.pin_memory()
            Xi = self.prepare_input(Xi)
            with self._autocast():
                out = _embed(module, Xi) if features else module(Xi)
            return out[:n].float().cpu().numpy()

        chunks, pending, n_pending, starts, counts = [], [], 0, [], []
        for i in range(len(dataset)):
            windows, first = dataset.windows(i, window, hop)
            starts.append(first)
            counts.append(len(first))
            pending.append(windows)
            n_pending += len(windows)
            if n_pending >= batch_size:
                block = np.concatenate(pending)
                full = len(block) - len(block) % batch_size
                for j in range(0, full, batch_size):
                    chunks.append(run(block[j : j + batch_size]))
                pending = [block[full:]] if full < len(block) else []
                n_pending = len(block) - full
        if n_pending:
            chunks.append(run(np.concatenate(pending)))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return np.concatenate(chunks, axis=0), offsets, starts


def _n_clips(batch):
    """Clips in a batch: its length, or the distinct clips of windowed targets."""
    Xi, yi = batch
    if isinstance(yi, dict) and "clip" in yi:
        return int(torch.unique_consecutive(yi["clip"]).numel())
    return len(Xi)
