"""Datasets, samplers and loaders of the estimators' skorch net (private).

:class:`_ClipDataset` holds clips (a 4-D array, or a list of ``(C, F, T_i)``
clips of different lengths) with their targets, sample weights and a mask of
known target entries; :class:`_BucketBatchSampler` and :func:`_bucket_loader`
form batches of clips of one length, so no padding or cropping ever changes
what the network sees.  The net (:mod:`._net`), the callbacks and the
estimators all import them from here.
"""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = []


# --------------------------------------------------------------------------
class _ClipDataset(Dataset):
    """Clips plus targets, sample weights and a mask of known target entries.

    Parameters
    ----------
    X : ndarray of shape (n, C, F, T) or list of ndarray of shape (C, F, T_i)
        float32 clips.
    y : ndarray of shape (n,) or (n, n_outputs), or None
        Encoded targets (int64 class indices, or float32 multi-hot rows).
    sample_weight : ndarray of shape (n,), or None
    mask : ndarray of shape (n, n_outputs), or None
        1 where a target entry is known (multi-label only).
    """

    def __init__(self, X, y=None, sample_weight=None, mask=None):
        self.X = X
        self.y = y
        self.sample_weight = sample_weight
        self.mask = mask
        if isinstance(X, np.ndarray):
            self.lengths = np.full(X.shape[0], X.shape[-1], dtype=np.int64)
        else:
            self.lengths = np.array([x.shape[-1] for x in X], dtype=np.int64)

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i):
        x = torch.from_numpy(np.ascontiguousarray(self.X[i]))
        if self.y is None:
            return x, torch.zeros((), dtype=torch.float32)
        target = {"y": torch.as_tensor(self.y[i])}
        target["w"] = torch.as_tensor(
            1.0 if self.sample_weight is None else self.sample_weight[i],
            dtype=torch.float32,
        )
        if self.mask is not None:
            target["m"] = torch.as_tensor(self.mask[i], dtype=torch.float32)
        return x, target

    def subset(self, indices):
        """A dataset of the selected rows (shares no state with ``self``)."""
        indices = np.asarray(indices)
        if isinstance(self.X, np.ndarray):
            X = self.X[indices]
        else:
            X = [self.X[i] for i in indices]
        pick = lambda a: None if a is None else a[indices]  # noqa: E731
        return _ClipDataset(X, pick(self.y), pick(self.sample_weight), pick(self.mask))


class _BucketBatchSampler(Sampler):
    """Batches of clips that all have the same number of frames.

    Clips are grouped by length; each group is cut into batches of at most
    ``batch_size`` clips.  With ``shuffle`` the order inside each group and the
    order of the batches are drawn from torch's (forked, seeded) default RNG.
    When training (``merge_singletons``), a trailing batch of one clip is merged
    into the previous batch of its group, because batch normalisation cannot
    train on a single example with a 1x1 feature map.
    """

    def __init__(self, lengths, batch_size, shuffle=False, merge_singletons=False):
        self.lengths = np.asarray(lengths)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.merge_singletons = merge_singletons

    def _batches(self):
        batches = []
        for length in np.unique(self.lengths):
            idx = np.flatnonzero(self.lengths == length)
            if self.shuffle:
                idx = idx[torch.randperm(len(idx)).numpy()]
            group = [
                idx[i : i + self.batch_size].tolist()
                for i in range(0, len(idx), self.batch_size)
            ]
            if self.merge_singletons and len(group) > 1 and len(group[-1]) == 1:
                group[-2].extend(group.pop())
            batches.extend(group)
        if self.shuffle and len(batches) > 1:
            batches = [batches[i] for i in torch.randperm(len(batches)).tolist()]
        elif not self.shuffle:
            # keep the input order as far as possible (stable over buckets)
            batches.sort(key=lambda b: b[0])
        return batches

    def __iter__(self):
        yield from self._batches()

    def __len__(self):
        return len(self._batches())


def _bucket_loader(dataset, batch_size, shuffle=False, pin_memory=False, **kwargs):
    """A DataLoader over equal-length batches (skorch's ``iterator_*`` hook)."""
    sampler = _BucketBatchSampler(
        dataset.lengths, batch_size, shuffle=shuffle, merge_singletons=shuffle
    )
    return DataLoader(dataset, batch_sampler=sampler, pin_memory=pin_memory, **kwargs)
