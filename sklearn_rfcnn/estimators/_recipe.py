"""The training recipe: callbacks, class weights, output-bias init, hold-out.

The callbacks are the learning-rate schedule, early stopping and stochastic
weight averaging; the hold-out is the internal validation split.
"""

import copy
import math
import warnings

import numpy as np
import torch
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from skorch.callbacks import EarlyStopping

from sklearn_rfcnn.estimators.callbacks import (
    PAPER_DECAY_END,
    LRSchedule,
    StochasticWeightAveraging,
    _ceil_fraction,
)
from sklearn_rfcnn.exceptions import ParameterError, RFCNNWarning
from sklearn_rfcnn.utils._stratify import multilabel_holdout

__all__ = []

#: Patience of the internal early stopping (epochs without a better
#: validation loss); change it with
#: ``net_params={"callbacks__early_stopping__patience": k}``.
_EARLY_STOPPING_PATIENCE = 5

#: ``optimizer`` parameter -> torch optimizer.
_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}

#: Hold-out used by ``early_stopping=True`` when ``validation_fraction`` is None.
_EARLY_STOPPING_FRACTION = 0.1

#: ``freq_mask="auto"`` / ``time_mask="auto"``: these shares of the axis from
#: :data:`AUTO_MASK_MIN_EPOCHS` epochs on, no mask below
#: (``benchmarks/recipe_study.py``: +0.02 to +0.04 mAP at 50 and 60 epochs,
#: -0.03 to -0.04 at 25, over 2 SoundFonts x 2-3 seeds each).
AUTO_MASKS = {"freq_mask": 0.25, "time_mask": 0.2}
AUTO_MASK_MIN_EPOCHS = 50


def _tag_counts(Y, mask):
    """Known positive and negative entries of each tag: ``(pos, neg)``."""
    known = np.ones_like(Y) if mask is None else mask
    return (known * (Y > 0.5)).sum(axis=0), (known * (Y <= 0.5)).sum(axis=0)


class _RecipeMixin:
    """What the training recipe adds around the network and the loss."""

    def _callbacks(self):
        """The recipe's skorch callbacks, then the user's (deep-copied)."""
        callbacks = [
            (
                "lr_schedule",
                LRSchedule(
                    self.max_epochs,
                    kind=self.lr_schedule,
                    warmup=self.warmup,
                    floor=0.0 if self.lr_schedule == "cosine" else 0.01,
                ),
            )
        ]
        if self.early_stopping:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="valid_loss",
                        patience=_EARLY_STOPPING_PATIENCE,
                        load_best=True,
                    ),
                )
            )
        if self.swa:
            start = _ceil_fraction(PAPER_DECAY_END, self.max_epochs)
            callbacks.append(("swa", StochasticWeightAveraging(start)))
        callbacks.extend(copy.deepcopy(self.callbacks or []))
        return callbacks

    def _class_weight_vector(self, y_enc, mask):
        """``class_weight`` as one float32 weight per class or per tag, or None.

        Classes: the weight of every clip of that class (``"balanced"``:
        ``n / (n_classes * count)``, as :func:`sklearn.utils.compute_class_weight`).
        Tags: the weight of a *positive* entry relative to a negative one, as
        ``pos_weight`` of :class:`torch.nn.BCEWithLogitsLoss` (``"balanced"``:
        ``n_negative / n_positive`` over the known entries of each tag, so
        that a tag's positives and negatives weigh the same in total; 1 for a
        tag without positives).
        """
        cw = self.class_weight
        if cw is None:
            return None
        n_out = self.n_outputs_
        if isinstance(cw, str):  # "balanced"
            if self._multilabel:
                pos, neg = _tag_counts(y_enc, mask)
                weights = np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)
            else:
                counts = np.bincount(y_enc, minlength=n_out).astype(np.float64)
                present = counts > 0
                weights = np.ones(n_out)
                weights[present] = len(y_enc) / (present.sum() * counts[present])
        elif isinstance(cw, dict):
            keys = list(self.classes_)
            weights = np.ones(n_out)
            for label, w in cw.items():
                if label not in keys:
                    raise ParameterError(
                        f"class_weight has the key {label!r}, which is not among "
                        f"the {'tag indices' if self._multilabel else 'classes'} "
                        f"{np.asarray(keys).tolist()}."
                    )
                weights[keys.index(label)] = w
        else:
            weights = np.asarray(cw, dtype=np.float64)
            if weights.shape != (n_out,):
                raise ParameterError(
                    f"class_weight has shape {weights.shape}; give one weight per "
                    f"{'tag' if self._multilabel else 'class'}, shape ({n_out},), "
                    "in the order of classes_."
                )
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ParameterError(
                "class_weight must be finite and non-negative; got "
                f"{np.asarray(weights).tolist()}."
            )
        return np.asarray(weights, dtype=np.float32)

    def _init_output_bias(self, module, y_enc, mask, class_weight):
        """Start the logits at the (class-weighted) label prior of the training data.

        Tags: the log-odds of each tag's share of positive entries; classes:
        the log of each class's share.  The loss then starts at the entropy
        of the labels instead of that of a coin flip (``output_bias="prior"``;
        measured in ``benchmarks/recipe_study.py``).
        """
        init = getattr(module, "init_output_bias", None)
        if init is None:  # a network without the hook keeps its own init
            return
        n_out = self.n_outputs_
        cw = np.ones(n_out) if class_weight is None else class_weight
        if self._multilabel:
            pos, neg = _tag_counts(y_enc, mask)
            pos = cw * pos
            p = np.clip((pos + 0.5) / (pos + neg + 1.0), 1e-3, 1 - 1e-3)
            bias = np.log(p) - np.log1p(-p)
        else:
            counts = cw * np.bincount(y_enc, minlength=n_out)
            p = (counts + 0.5) / (counts.sum() + 0.5 * n_out)
            bias = np.log(p) - np.log(p).mean()
        ref = next(module.parameters())
        init(torch.as_tensor(bias, dtype=ref.dtype, device=ref.device))

    def _augmentations(self):
        """The net's augmentation parameters: ``roll`` and the masks' widths.

        None on 2-D ``X`` (one band, no time structure to shift or mask).
        ``"auto"`` masks only trainings of at least
        :data:`AUTO_MASK_MIN_EPOCHS` epochs: in shorter ones the network has
        not fitted its training clips yet, and masking them costs accuracy.
        """
        if self._two_d:
            return {"roll": 0, **dict.fromkeys(AUTO_MASKS, 0)}
        augmentations = {"roll": self.roll}
        for name, share in AUTO_MASKS.items():
            value = getattr(self, name)
            if value == "auto":
                value = share if self.max_epochs >= AUTO_MASK_MIN_EPOCHS else 0
            augmentations[name] = value
        return augmentations

    def _validation_fraction(self):
        """The hold-out actually used: None unless something uses one."""
        if self.validation_fraction:
            return self.validation_fraction
        if self.early_stopping:
            return _EARLY_STOPPING_FRACTION
        return None

    def _split(self, dataset, y_enc, seed):
        """Internal hold-out: (train, valid) datasets; valid is None when off."""
        fraction = self._validation_fraction()
        n = len(dataset)
        n_valid = math.ceil(fraction * n) if fraction else 0
        if n_valid == 0 or n - n_valid < 2:
            if fraction:
                warnings.warn(
                    f"validation_fraction={fraction} leaves no usable hold-out with "
                    f"{n} samples; training without internal validation.",
                    RFCNNWarning,
                    stacklevel=4,
                )
            return dataset, None
        if self._multilabel:
            train, valid = multilabel_holdout(y_enc, n_valid, random_state=seed)
            return dataset.subset(train), dataset.subset(valid)
        splitter = ShuffleSplit(n_splits=1, test_size=n_valid, random_state=seed)
        counts = np.bincount(y_enc, minlength=self.n_outputs_)
        if counts.min() >= 2 and min(n_valid, n - n_valid) >= self.n_outputs_:
            splitter = StratifiedShuffleSplit(
                n_splits=1, test_size=n_valid, random_state=seed
            )
        train, valid = next(splitter.split(np.zeros(n), y_enc))
        return dataset.subset(train), dataset.subset(valid)
