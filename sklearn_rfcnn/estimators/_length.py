"""The length policy: random crops for training, sliding windows for prediction.

One module holds every rule about clip length that the estimators,
``predict_proba_frames``, the validation loop and :mod:`sklearn_rfcnn.hear`
follow:

* a span longer than its clip is read circularly (:func:`take_frames`);
* ``crop_frames`` is checked against the training clips (:func:`check_crop`);
* windows of ``crop_frames`` frames start every ``window_hop`` frames, half a
  window by default (:func:`window_hop`), plus one aligned to the clip's end
  (:func:`window_starts`);
* the windows of a clip are aggregated by their mean (or maximum):
  :func:`reduce_windows` on arrays, :func:`aggregate_windows` on tensors, and
  :func:`sliding_windows` cuts a batch of equal-length spectrograms into the
  same windows on a tensor.

The names here carry no leading underscore because :mod:`sklearn_rfcnn.hear`
uses them through ``sklearn_rfcnn.estimators``; they are not part of the public
API (not in ``__all__``).
"""

import warnings

import numpy as np
import torch

from sklearn_rfcnn.exceptions import DataError, ParameterError, RFCNNWarning

__all__ = []


def take_frames(clip, start, n_frames):
    """Frames ``start .. start + n_frames`` of ``clip`` (C, F, T), tiled if short.

    A clip shorter than ``start + n_frames`` is read circularly (repeated end
    to start), the same wrap the circular time roll uses; a slice of a
    memory-mapped clip reads only the span.

    Examples
    --------
    >>> clip = np.arange(3.0).reshape(1, 1, 3)
    >>> take_frames(clip, 0, 7).ravel().tolist()
    [0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0]
    >>> take_frames(clip, 1, 2).ravel().tolist()
    [1.0, 2.0]
    """
    T = clip.shape[-1]
    if start + n_frames <= T:
        return clip[..., start : start + n_frames]
    return clip[..., (start + np.arange(n_frames)) % T]


def window_hop(window, hop=None):
    """Frames between window starts for windows of ``window`` frames.

    Parameters
    ----------
    window : int
        Window length in frames (the estimator's ``crop_frames``).
    hop : int or None, default=None
        The estimator's ``window_hop``; None means half a window.

    Returns
    -------
    hop : int

    Examples
    --------
    >>> window_hop(16), window_hop(16, 4), window_hop(1)
    (8, 4, 1)
    """
    hop = max(int(window) // 2, 1) if hop is None else int(hop)
    if hop > window:
        raise ParameterError(
            f"window_hop={hop} is larger than the window ({window} frames), "
            "so frames between windows would be skipped; use window_hop <= "
            f"{window} (None: half a window)."
        )
    return hop


def window_starts(n_frames, window, hop):
    """First frames of the sliding windows over a clip of ``n_frames``.

    Windows start every ``hop`` frames from 0; when the last one does not end
    at the clip's end, one more window is aligned to the end, so every frame
    lies in at least one window.  A clip of at most ``window`` frames has one
    window at 0 (tiled up to ``window`` frames, see :func:`take_frames`).

    Examples
    --------
    >>> window_starts(10, 4, 2).tolist()
    [0, 2, 4, 6]
    >>> window_starts(11, 4, 2).tolist()
    [0, 2, 4, 6, 7]
    >>> window_starts(3, 4, 2).tolist()
    [0]
    """
    n_frames, window, hop = int(n_frames), int(window), int(hop)
    if n_frames <= window:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_frames - window + 1, hop, dtype=np.int64)
    if starts[-1] != n_frames - window:
        starts = np.append(starts, n_frames - window)
    return starts


def sliding_windows(S, window, hop):
    """The windows of a batch of equal-length spectrograms, as one batch.

    Parameters
    ----------
    S : torch.Tensor of shape (n, C, F, T)
    window, hop : int
        Window length and hop in frames (see :func:`window_starts`; a clip
        shorter than the window is tiled).

    Returns
    -------
    windows : torch.Tensor of shape (n * n_windows, C, F, window)
        Clip-major: the windows of clip 0, then of clip 1, ...
    n_windows : int

    Examples
    --------
    >>> S = torch.arange(10.0).reshape(1, 1, 1, 10)
    >>> w, n = sliding_windows(S, 4, 2)
    >>> n, w[:, 0, 0].tolist()[-1]
    (4, [6.0, 7.0, 8.0, 9.0])
    """
    n, C, n_bands, T = S.shape
    window = int(window)
    starts = torch.as_tensor(window_starts(T, window, hop))
    idx = ((starts[:, None] + torch.arange(window)[None]) % T).to(S.device)
    windows = S[..., idx]  # (n, C, F, n_windows, window)
    n_win = idx.shape[0]
    windows = windows.permute(0, 3, 1, 2, 4).reshape(n * n_win, C, n_bands, window)
    return windows, n_win


def reduce_windows(outputs, offsets, how="mean"):
    """Per-clip mean (or max) of the rows ``outputs[offsets[i]:offsets[i + 1]]``.

    Examples
    --------
    >>> out = np.array([[1.0], [3.0], [5.0]], dtype=np.float32)
    >>> reduce_windows(out, np.array([0, 2, 3])).ravel().tolist()
    [2.0, 5.0]
    >>> reduce_windows(out, np.array([0, 2, 3]), "max").ravel().tolist()
    [3.0, 5.0]
    """
    if how == "max":
        return np.maximum.reduceat(outputs, offsets[:-1], axis=0)
    sums = np.add.reduceat(outputs.astype(np.float64), offsets[:-1], axis=0)
    return (sums / np.diff(offsets)[:, None]).astype(np.float32)


def aggregate_windows(outputs, owners, how="mean"):
    """Per-clip aggregate of per-window outputs, clips in order of first window.

    The tensor form of :func:`reduce_windows` (the validation loop's).

    Parameters
    ----------
    outputs : torch.Tensor of shape (n_windows, D)
        Logits (or embeddings) of consecutive windows.
    owners : torch.Tensor of shape (n_windows,)
        The clip of each window; a clip's windows are contiguous.
    how : {"mean", "max"}
        Mean or elementwise maximum over each clip's windows.

    Returns
    -------
    aggregated : torch.Tensor of shape (n_clips, D)
    first : torch.Tensor of shape (n_clips,)
        Index of each clip's first window.

    Examples
    --------
    >>> out = torch.tensor([[1.0], [3.0], [5.0]])
    >>> agg, first = aggregate_windows(out, torch.tensor([0, 0, 1]))
    >>> agg.ravel().tolist(), first.tolist()
    ([2.0, 5.0], [0, 2])
    """
    _, counts = torch.unique_consecutive(owners, return_counts=True)
    first = torch.cumsum(counts, 0) - counts
    parts = torch.split(outputs, counts.tolist())
    if how == "max":
        agg = torch.stack([p.amax(dim=0) for p in parts])
    else:
        agg = torch.stack([p.mean(dim=0) for p in parts])
    return agg, first


def check_crop(crop, lengths, two_d, name):
    """``crop_frames`` against the training clips: error, warning or nothing.

    Parameters
    ----------
    crop : int or None
        The estimator's ``crop_frames``.
    lengths : ndarray of shape (n_clips,)
        Frames of each training clip.
    two_d : bool
        Whether X was 2-D (one band, not cropped).
    name : str
        The estimator's class name, for messages.
    """
    if crop is None:
        return
    if two_d:
        raise DataError(
            f"crop_frames={crop} crops the frame axis of spectrograms, but X "
            f"is 2-D (n, n_features): {name} reads it as one band of "
            "n_features frames and does not crop it. Pass 3-D/4-D "
            "spectrograms, or set crop_frames=None."
        )
    short = np.flatnonzero(lengths < crop)
    if len(short) == len(lengths):
        longest = int(np.argmax(lengths))
        raise DataError(
            f"crop_frames={crop} is longer than every training clip (the "
            f"longest, X[{longest}], has {int(lengths[longest])} frames): every "
            "crop would be a clip repeated end to start. Use crop_frames <= "
            f"{int(lengths[longest])} (frames, not seconds), or None to train "
            "on whole clips."
        )
    if len(short):
        shown = ", ".join(f"X[{i}] ({int(lengths[i])} frames)" for i in short[:5])
        more = f" and {len(short) - 5} more" if len(short) > 5 else ""
        warnings.warn(
            f"{len(short)} of {len(lengths)} training clips are shorter than "
            f"crop_frames={crop} and are tiled (repeated end to start) up to "
            f"it: {shown}{more}. Lower crop_frames to crop them instead.",
            RFCNNWarning,
            stacklevel=5,
        )
