"""The scikit-learn surface shared by the estimators that own a skorch net.

:class:`_BaseRFCNN` holds the common hyper-parameters and their constraints,
seeds every random draw from ``random_state``, trains the net and runs batched
inference.  It is composed of one mixin per concern: input validation
(:mod:`._inputs`), the training recipe (:mod:`._recipe`), net construction
(:mod:`._construction`) and execution (:mod:`._execution`); the length policy
is :mod:`._length`.  :class:`~sklearn_rfcnn.RFCNNClassifier` and
:class:`~sklearn_rfcnn.RFCNNEmbedder` add only their public faces (``predict*``
and ``transform``).

Input layouts accepted everywhere (``X``):

* 4-D ``(n, C, F, T)``: clips with ``C`` channels, ``F`` mel bands, ``T`` frames;
* 3-D ``(n, F, T)``: single-channel clips;
* 2-D ``(n, n_features)``: a one-band input ``(n, 1, 1, n_features)`` (so that
  ordinary tabular data and scikit-learn's common checks work); the time roll
  is not applied to it;
* a list of ``(F, T_i)`` or ``(C, F, T_i)`` arrays of different lengths
  (``MelSpectrogram`` on clips of different durations);
* a *clip source* (``__rfcnn_clip_source__ = True``, ``len``, ``src[i]`` ->
  ``(C, F, T_i)``, ``lengths``, ``clip_shape``, optional
  ``front_end_checksum``), e.g. :class:`sklearn_rfcnn.datasets.SpectrogramStore`:
  read one clip (or crop) at a time, never whole.

Length policy (the user guide, "Long recordings: crops, windows and
taggrams"):

* ``crop_frames=None``, every clip of one length: batches of whole clips, as
  the fully convolutional network was always trained;
* ``crop_frames=None``, clips of different lengths: training batches of
  ``batch_size`` clips sorted by length (within shuffled pools), each clip
  cropped at a random start to the shortest clip of its batch (fresh offsets
  every epoch, so no frame is left out for good); validation and inference
  see whole clips, batched by length;
* ``crop_frames=W``: training batches of ``batch_size`` random crops of ``W``
  frames; validation and inference slide windows of ``W`` frames every
  ``window_hop`` frames and aggregate each clip's window logits
  (``aggregate``; embeddings always by the mean);
* a clip shorter than the crop or the window is tiled (repeated end to
  start) up to it.
"""

import numbers

import numpy as np
import torch
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    _check_sample_weight,
)
from skorch.helper import predefined_split

from sklearn_rfcnn.estimators._construction import _ConstructionMixin
from sklearn_rfcnn.estimators._data import (
    _ClipDataset,
)
from sklearn_rfcnn.estimators._execution import _ExecutionMixin
from sklearn_rfcnn.estimators._inputs import _InputsMixin
from sklearn_rfcnn.estimators._length import check_crop, reduce_windows, window_hop
from sklearn_rfcnn.estimators._params_doc import CLASS_DOCS
from sklearn_rfcnn.estimators._recipe import _RecipeMixin
from sklearn_rfcnn.exceptions import (
    ParameterError,
)
from sklearn_rfcnn.models import check_model_args
from sklearn_rfcnn.receptive_field import receptive_field
from sklearn_rfcnn.utils._docstrings import fill_text
from sklearn_rfcnn.utils._sklearn_compat import (
    Interval,
    RealNotInt,
    StrOptions,
    _fit_context,
)
from sklearn_rfcnn.utils._torch import (
    resolve_device,
    seeded_torch,
)
from sklearn_rfcnn.utils._validation import ParamValidationMixin

__all__ = []

#: Smallest probability returned for multi-label output (strictly inside (0, 1)).
_PROBA_EPS = np.finfo(np.float64).eps


#: Fitted state of every RF-CNN estimator besides ``net_`` and ``history_``:
#: what :meth:`RFCNNEmbedder.from_classifier` shares and ``save``/``load``
#: persist (``_persistence._ENCODERS`` has one entry per name).
_FITTED_ATTRIBUTES = (
    "classes_",
    "n_outputs_",
    "n_features_in_",
    "feature_names_in_",
    "receptive_field_",
    "_multilabel",
    "_indicator_dtype",
    "_clip_shape",
    "_two_d",
    "precision_",
    "channels_last_",
    "inference_channels_last_",
    "front_end_checksum_",
)


#: A SpecAugment mask's width: bins or frames, a share of the axis, or "auto".
_MASK_WIDTH = [
    Interval(numbers.Integral, 0, None, closed="left"),
    Interval(RealNotInt, 0, 1, closed="left"),
    StrOptions({"auto"}),
]


class _BaseRFCNN(
    _InputsMixin,
    _RecipeMixin,
    _ConstructionMixin,
    _ExecutionMixin,
    ParamValidationMixin,
    BaseEstimator,
):
    """Common parameters and training of the RF-CNN estimators (private).

    See :class:`~sklearn_rfcnn.RFCNNClassifier` for the parameters.  A
    subclass docstring's ``%(parameters_and_attributes)s`` line is replaced by
    the shared ``Parameters`` section and the start of ``Attributes``.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__doc__:
            cls.__doc__ = fill_text(cls.__doc__, CLASS_DOCS)

    _parameter_constraints = {
        "arch": [str],
        "rho": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "rho_f": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "rho_t": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "width": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "depth": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "frequency_aware": ["boolean"],
        "shake_shake": ["boolean"],
        "head": [StrOptions({"map", "pooled"}), None],
        "mixup_alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "roll": [Interval(numbers.Integral, 0, None, closed="left")],
        "freq_mask": _MASK_WIDTH,
        "time_mask": _MASK_WIDTH,
        "lr": [Interval(numbers.Real, 0, None, closed="left")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "optimizer": [StrOptions({"adam", "adamw"})],
        "lr_schedule": [StrOptions({"cosine", "linear", "constant"})],
        "warmup": [Interval(numbers.Real, 0, 1, closed="left")],
        "swa": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left"), None],
        "early_stopping": ["boolean"],
        "threshold": [Interval(numbers.Real, 0, 1, closed="both"), "array-like"],
        "class_weight": [StrOptions({"balanced"}), dict, "array-like", None],
        "output_bias": [StrOptions({"prior", "zero"})],
        "crop_frames": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "window_hop": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "aggregate": [StrOptions({"mean", "max"})],
        "device": [str, torch.device],
        "precision": [StrOptions({"auto", "32", "bf16", "16"})],
        "channels_last": ["boolean", StrOptions({"auto"})],
        "distributed": [StrOptions({"accelerate"}), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
        "net_params": [dict, None],
    }

    def __init__(
        self,
        *,
        arch="cp_resnet",
        rho=None,
        rho_f=None,
        rho_t=None,
        width=None,
        depth=None,
        frequency_aware=False,
        shake_shake=False,
        head=None,
        mixup_alpha=0.3,
        roll=50,
        freq_mask="auto",
        time_mask="auto",
        lr=1e-3,
        weight_decay=1e-2,
        max_epochs=100,
        batch_size=32,
        optimizer="adamw",
        lr_schedule="cosine",
        warmup=0.05,
        swa=False,
        validation_fraction=None,
        early_stopping=False,
        threshold=0.5,
        class_weight=None,
        output_bias="zero",
        crop_frames=None,
        window_hop=None,
        aggregate="mean",
        device="auto",
        precision="auto",
        channels_last="auto",
        distributed=None,
        random_state=None,
        verbose=1,
        callbacks=None,
        net_params=None,
    ):
        self.arch = arch
        self.rho = rho
        self.rho_f = rho_f
        self.rho_t = rho_t
        self.width = width
        self.depth = depth
        self.frequency_aware = frequency_aware
        self.shake_shake = shake_shake
        self.head = head
        self.mixup_alpha = mixup_alpha
        self.roll = roll
        self.freq_mask = freq_mask
        self.time_mask = time_mask
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.warmup = warmup
        self.swa = swa
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.threshold = threshold
        self.class_weight = class_weight
        self.output_bias = output_bias
        self.crop_frames = crop_frames
        self.window_hop = window_hop
        self.aggregate = aggregate
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.distributed = distributed
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.net_params = net_params

    # ------------------------------------------------------------------
    # training (public)
    # ------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, mask=None):
        """Train the network from scratch for ``max_epochs`` epochs.

        Parameters
        ----------
        X : array-like of shape (n, F, T), (n, C, F, T) or (n, n_features), \
                or list of arrays of shape (F, T_i)
            Spectrograms.
        y : array-like of shape (n,) or (n, n_tags)
            Class labels, or a 0/1 indicator matrix for multi-label tagging.
        sample_weight : array-like of shape (n,), default=None
            Non-negative weight of each clip's loss.
        mask : array-like of shape (n, n_tags), default=None
            Multi-label only: 1 where the tag of a clip is known, 0 where it is
            unknown (excluded from the loss).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, mask=mask)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None, mask=None):
        """Train one more epoch (the first call builds the network).

        Each call is one epoch over the given data, with the learning rate the
        schedule assigns to that point of training (the floor after
        ``max_epochs``); the internal hold-out, when ``validation_fraction``
        is set, is drawn from each call's data.  Early stopping and SWA act
        within a call, so they are meant for :meth:`fit`.

        Parameters
        ----------
        X : array-like or list of arrays
            Spectrograms, as in :meth:`fit`.
        y : array-like of shape (n,) or (n, n_tags)
            Labels or indicator matrix.
        classes : array-like of shape (n_classes,), default=None
            Every class label, needed on the first call when ``y`` of that
            call does not contain them all; ignored afterwards.
        sample_weight : array-like of shape (n,), default=None
            Weight of each clip's loss.
        mask : array-like of shape (n, n_tags), default=None
            Known entries of a multi-label ``y``.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(
            X,
            y,
            sample_weight=sample_weight,
            mask=mask,
            classes=classes,
            incremental=True,
        )

    def _check_params_extra(self):
        """Cross-parameter checks that need no data (run before every fit)."""
        # parameters the chosen architecture cannot use, and values (rho
        # against depth) it rejects, without building the network
        check_model_args(self.arch, **self._model_kwargs())
        if self.crop_frames is not None:
            self._window_hop(self.crop_frames)

    # ------------------------------------------------------------------
    # data validation
    # ------------------------------------------------------------------
    # ------------------------------------------------------------------
    # network and net
    # ------------------------------------------------------------------
    def _window_hop(self, window):
        """Frames between window starts (:func:`._length.window_hop`)."""
        return window_hop(window, self.window_hop)

    def _check_crop(self, dataset, two_d):
        """``crop_frames`` against the training clips (:func:`._length.check_crop`)."""
        check_crop(self.crop_frames, dataset.lengths, two_d, type(self).__name__)

    def _fit(self, X, y, *, sample_weight, mask, classes=None, incremental=False):
        """Fit from scratch, or train one more epoch when ``incremental``."""
        first = not (incremental and hasattr(self, "net_"))
        clips, y, two_d = self._check_clips(X, reset=first, y=y)
        y_enc = self._encode_targets(y, reset=first, classes=classes)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight,
                np.zeros((len(clips), 1), dtype=np.float32),
                dtype=np.float32,
                ensure_non_negative=True,
            )
        mask = self._check_mask(mask, len(clips))
        if self._multilabel:
            self._threshold_array()
        dataset = _ClipDataset(clips, y_enc, sample_weight, mask)
        self._check_crop(dataset, two_d)

        if first:
            accelerator = None
            if self.distributed == "accelerate":
                accelerator, device = self._accelerator()
            else:
                device = resolve_device(self.device)
            random_state = check_random_state(self.random_state)
            torch_seed, np_seed = random_state.randint(np.iinfo(np.int32).max, size=2)
            rng = np.random.default_rng(int(np_seed))
            in_channels = self._clip_shape[0]
            with seeded_torch(int(torch_seed), device):
                module = self._create_module(in_channels, self.n_outputs_)
                class_weight = self._class_weight_vector(y_enc, mask)
                net = self._build_net(
                    module, device, rng, class_weight, accelerator, dataset.source
                )
                net.initialize()
                if self.output_bias == "prior":
                    self._init_output_bias(net.module_, y_enc, mask, class_weight)
            self.receptive_field_ = receptive_field(module)
            if self.verbose and (accelerator is None or accelerator.is_main_process):
                summary = self._execution_summary(device, module)
                if accelerator is not None:
                    summary += (
                        f"; data parallel over {accelerator.num_processes} "
                        f"process(es) (Accelerate), batch_size={self.batch_size} "
                        "in all"
                    )
                print(summary, flush=True)
        else:
            net = self.net_
        epochs = 1 if incremental else self.max_epochs
        torch_seed = int(net.rng.integers(np.iinfo(np.int32).max))
        split_seed = int(net.rng.integers(np.iinfo(np.int32).max))
        train, valid = self._split(dataset, y_enc, split_seed)
        net.train_split = None if valid is None else predefined_split(valid)
        net.max_epochs = epochs
        if not incremental:
            net.release_freed_memory()
        try:
            with seeded_torch(torch_seed, net.device):
                net.partial_fit(train)
        finally:
            # the hold-out is not kept inside the fitted estimator
            net.train_split = None
        self.net_ = net
        self.history_ = net.history
        return self

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def _forward(self, X, *, features=False):
        """Logits (or pooled embeddings) for X as a float32 ndarray.

        With ``crop_frames``: the windows' logits aggregated per clip by
        ``aggregate`` (embeddings by the mean); else each clip whole.
        """
        clips, _, _ = self._check_clips(X, reset=False)
        dataset = _ClipDataset(clips)
        if self.crop_frames is None:
            return self.net_.forward_clips(dataset, self.batch_size, features=features)
        window = self.crop_frames
        outputs, offsets, _ = self.net_.forward_windows(
            dataset, self.batch_size, window, self._window_hop(window), features
        )
        return reduce_windows(outputs, offsets, "mean" if features else self.aggregate)

    def _forward_frames(self, X, window_frames):
        """Per-window logits of every clip: ``(outputs, offsets, starts, window)``."""
        window = self.crop_frames if window_frames is None else window_frames
        if window is None:
            raise ParameterError(
                f"{type(self).__name__} was fitted with crop_frames=None, so it "
                "has no window length; pass window_frames=<frames> (e.g. the "
                "length of the training clips), or fit with crop_frames."
            )
        if (
            isinstance(window, bool | np.bool_)
            or not isinstance(window, numbers.Integral)
            or window < 1
        ):
            raise ParameterError(
                f"window_frames={window!r} must be an int >= 1 (frames), or None "
                "for crop_frames."
            )
        window = int(window)
        clips, _, _ = self._check_clips(X, reset=False)
        outputs, offsets, starts = self.net_.forward_windows(
            _ClipDataset(clips), self.batch_size, window, self._window_hop(window)
        )
        return outputs, offsets, starts, window

    def _proba_from_logits(self, logits):
        logits = logits.astype(np.float64)
        if self._multilabel:
            return np.clip(expit(logits), _PROBA_EPS, 1.0 - _PROBA_EPS)
        return softmax(logits, axis=1)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.two_d_array = True
        tags.target_tags.required = True
        device = str(self.device)
        tags.non_deterministic = device.startswith("cuda") or (
            device == "auto" and torch.cuda.is_available()
        )
        return tags

    def _threshold_array(self):
        threshold = np.asarray(self.threshold, dtype=np.float64)
        if threshold.ndim == 0:
            return threshold
        if threshold.shape != (self.n_outputs_,):
            raise ParameterError(
                f"threshold has shape {threshold.shape}; give a scalar or one "
                f"value per tag, shape ({self.n_outputs_},)."
            )
        return threshold
