"""Training-time augmentations of the estimators' net (private).

Each augmentation is one function ``(X, rng, net) -> X`` applied to a batch
``(B, C, F, T)`` on the device before the forward pass, and one estimator
parameter that switches it on (its value is read from the net).  They run in
the order of :data:`AUGMENTATIONS`; mixup, which also mixes the *losses*,
draws its coefficients last (:func:`draw_mixup`).  Adding an augmentation is
one function here, one entry in :data:`AUGMENTATIONS` and one parameter.

All randomness comes from the net's numpy ``Generator`` (seeded from the
estimator's ``random_state``).
"""

import numbers

import numpy as np
import torch

__all__ = []


# --------------------------------------------------------------------------
def _roll_time(X, shifts):
    """Circularly shift each example of ``X`` (B, C, F, T) by ``shifts[b]`` frames."""
    T = X.shape[-1]
    shifts = torch.as_tensor(shifts, device=X.device, dtype=torch.long)
    index = (torch.arange(T, device=X.device)[None, :] - shifts[:, None]) % T
    index = index[:, None, None, :].expand_as(X)
    return torch.gather(X, -1, index)


def _mixup_coefficients(rng, batch_size, alpha):
    """Per-sample mixing weights ``lam = max(lam, 1 - lam)`` and a partner order."""
    lam = rng.beta(alpha, alpha, size=batch_size)
    lam = np.maximum(lam, 1.0 - lam).astype(np.float32)
    perm = rng.permutation(batch_size)
    return lam, perm


def _mix_inputs(X, lam, perm):
    """``lam * X + (1 - lam) * X[perm]`` with one ``lam`` per example."""
    lam = torch.as_tensor(lam, device=X.device, dtype=X.dtype).view(-1, 1, 1, 1)
    return lam * X + (1.0 - lam) * X[torch.as_tensor(perm, device=X.device)]


def _augment_roll(X, rng, net):
    """Random circular shift along time of up to ``net.roll`` frames per example."""
    if not net.roll or X.shape[-1] <= 1:
        return X
    shifts = rng.integers(-net.roll, net.roll + 1, size=X.shape[0])
    return _roll_time(X, shifts)


def _mask_width(width, size):
    """Widest mask: ``width`` entries (an int) or that share of ``size`` (a float)."""
    if isinstance(width, numbers.Integral):
        return min(int(width), size)
    return int(width * size)


def _band_mask(rng, batch_size, size, max_width):
    """Boolean ``(B, size)`` mask: per example one band of ``0..max_width`` entries.

    The width is uniform in ``[0, max_width]`` and the start uniform over the
    positions where the band fits, as in SpecAugment (Park et al., 2019).
    """
    width = rng.integers(0, max_width + 1, size=batch_size)
    start = (rng.random(batch_size) * (size - width + 1)).astype(np.int64)
    pos = np.arange(size)[None, :]
    return (pos >= start[:, None]) & (pos < (start + width)[:, None])


def _mask_axis(X, rng, width, axis):
    """``X`` with one band per example along ``axis`` (2 or 3) set to 0."""
    size = X.shape[axis]
    max_width = _mask_width(width, size) if width else 0
    if not max_width or size <= 1:
        return X
    shape = [X.shape[0], 1, 1, 1]
    shape[axis] = size
    mask = _band_mask(rng, X.shape[0], size, max_width)
    return X.masked_fill(torch.as_tensor(mask, device=X.device).view(shape), 0.0)


def _augment_freq_mask(X, rng, net):
    """SpecAugment frequency mask: a band of up to ``net.freq_mask`` bins set to 0."""
    return _mask_axis(X, rng, net.freq_mask, 2)


def _augment_time_mask(X, rng, net):
    """SpecAugment time mask: a run of up to ``net.time_mask`` frames set to 0."""
    return _mask_axis(X, rng, net.time_mask, 3)


#: ``(name, function)``: the input augmentations, applied in this order.
AUGMENTATIONS = (
    ("roll", _augment_roll),
    ("freq_mask", _augment_freq_mask),
    ("time_mask", _augment_time_mask),
)


def draw_mixup(X, rng, alpha):
    """Mix the batch with itself: ``(X_mixed, lam, perm)``, or ``(X, None, None)``."""
    if not alpha or X.shape[0] <= 1:
        return X, None, None
    lam, perm = _mixup_coefficients(rng, X.shape[0], alpha)
    return _mix_inputs(X, lam, perm), lam, perm
