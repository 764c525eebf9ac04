"""Datasets, samplers and loaders of the estimators' skorch net (private).

:class:`_ClipDataset` holds clips -- a 4-D array, a list of ``(C, F, T_i)``
clips of different lengths, or a *clip source* (below) -- with their targets,
sample weights and a mask of known target entries.  An item is a whole clip
(an integer key) or a span of frames of one clip (a key ``(i, start,
n_frames)``); spans are cut inside :meth:`_ClipDataset.__getitem__`, so only
the span is materialised, also from a source read lazily in DataLoader worker
processes.

Batch samplers (all draws from torch's forked, seeded default RNG, in the
main process, so worker processes change nothing):

* :class:`_BucketBatchSampler`: whole clips, every batch of one length
  (equal-length input, and inference / validation without ``crop_frames``);
* :class:`_CropBatchSampler`: training batches of ``batch_size`` random crops
  of ``crop_frames`` frames, or -- without ``crop_frames``, on clips of
  different lengths -- of length-sorted clips cropped to the shortest clip of
  their batch;
* :class:`_WindowBatchSampler`: the sliding windows of whole clips
  (validation with ``crop_frames``), never splitting a clip between batches.

Short-clip policy: a clip shorter than the span asked for is *tiled*
(repeated end to start) up to it, see :func:`take_frames`.

A clip source is any object with ``__rfcnn_clip_source__ = True``,
``len(src)``, ``src[i]`` -> float32 ``(C, F, T_i)``, ``src.lengths`` (int,
``(n,)``), ``src.clip_shape`` -> ``(C, F)`` and optionally
``src.front_end_checksum`` and ``src.read(i, start, stop)`` -> float32
``(C, F, stop - start)``, which crops and windows inside a clip use so that
only their frames are read (:class:`sklearn_rfcnn.datasets.SpectrogramStore`
is one; this module never imports it).
"""

import math
import os

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from sklearn_rfcnn.estimators._length import take_frames, window_starts
from sklearn_rfcnn.exceptions import DataError
from sklearn_rfcnn.utils._checks import reject_non_finite

__all__ = []

#: Batches per pool of the length-sorted sampler (no ``crop_frames``): clips
#: are shuffled, then sorted by length within pools of this many batches.
_SORT_POOL_BATCHES = 8


def _is_clip_source(X):
    """True for an object following the clip-source protocol (module docstring)."""
    return getattr(X, "__rfcnn_clip_source__", False) is True


# --------------------------------------------------------------------------
class _ClipDataset(Dataset):
    """Clips plus targets, sample weights and a mask of known target entries.

    Parameters
    ----------
    X : ndarray of shape (n, C, F, T), list of ndarray of shape (C, F, T_i), \
            or a clip source
        float32 clips.  A source is read lazily, one clip per item.
    y : ndarray of shape (n,) or (n, n_outputs), or None
        Encoded targets (int64 class indices, or float32 multi-hot rows).
    sample_weight : ndarray of shape (n,), or None
    mask : ndarray of shape (n, n_outputs), or None
        1 where a target entry is known (multi-label only).
    rows : ndarray of shape (n,), or None
        Source only: the source's items this dataset holds (a subset).

    Notes
    -----
    Picklable and free of open handles whenever the source is (a DataLoader
    worker receives a copy); it keeps nothing read from a source.
    """

    def __init__(self, X, y=None, sample_weight=None, mask=None, rows=None):
        self.X = X
        self.y = y
        self.sample_weight = sample_weight
        self.mask = mask
        self.source = _is_clip_source(X)
        if self.source:
            n = len(X)
            self.rows = np.arange(n, dtype=np.int64) if rows is None else rows
            self.clip_shape = tuple(int(v) for v in X.clip_shape)
            self.lengths = np.asarray(X.lengths, dtype=np.int64)[self.rows]
        else:
            self.rows = None
            if isinstance(X, np.ndarray):
                self.lengths = np.full(X.shape[0], X.shape[-1], dtype=np.int64)
            else:
                self.lengths = np.array([x.shape[-1] for x in X], dtype=np.int64)

    def __len__(self):
        return len(self.lengths)

    def clip(self, i):
        """Clip ``i`` as a float32 ndarray ``(C, F, T_i)`` (read from a source)."""
        if not self.source:
            return self.X[i]
        return self._from_source(i)

    def _from_source(self, i, start=None, stop=None):
        """Clip ``i`` of the source, or its frames ``start..stop`` via ``read``.

        The shape is checked against the source's ``clip_shape`` and
        ``lengths`` (an index that disagrees with the data is an error).
        """
        row = int(self.rows[i])
        if start is None:
            x, span = np.asarray(self.X[row]), ""
            start, stop = 0, int(self.lengths[i])
        else:
            x = np.asarray(self.X.read(row, start, stop))
            span = f" (frames {start}..{stop})"
        shape = (*self.clip_shape, stop - start)
        if x.shape != shape:
            raise DataError(
                f"item {row}{span} of the clip source has shape {x.shape}, but "
                f"its clip_shape and lengths announce {shape}; rebuild the source "
                "(its index disagrees with its data)."
            )
        return x

    def _check_finite(self, x, i):
        if self.source:
            reject_non_finite(
                x,
                f"item {int(self.rows[i])} of the clip source",
                "fix or drop that clip when building the source.",
            )
        return x

    def _frames(self, i, start, n_frames):
        stop = start + n_frames
        if self.source and hasattr(self.X, "read") and stop <= int(self.lengths[i]):
            # a source with a partial read (SpectrogramStore.read) reads only
            # the crop's frames from disk
            x = self._from_source(i, start, stop)
        else:
            x = take_frames(self.clip(i), start, n_frames)
        return self._check_finite(np.ascontiguousarray(x, dtype=np.float32), i)

    def __getitem__(self, key):
        if isinstance(key, tuple):  # (i, start, n_frames): a crop or a window
            i, start, n_frames = (int(v) for v in key)
            x = torch.from_numpy(self._frames(i, start, n_frames))
        else:
            i = int(key)
            x = torch.from_numpy(self._frames(i, 0, int(self.lengths[i])))
        if self.y is None:
            return x, torch.zeros((), dtype=torch.float32)
        target = {"y": torch.as_tensor(self.y[i])}
        target["w"] = torch.as_tensor(
            1.0 if self.sample_weight is None else self.sample_weight[i],
            dtype=torch.float32,
        )
        if self.mask is not None:
            target["m"] = torch.as_tensor(self.mask[i], dtype=torch.float32)
        if isinstance(key, tuple):
            target["clip"] = torch.as_tensor(i, dtype=torch.int64)
        return x, target

    def windows(self, i, window, hop):
        """``(windows, starts)``: the sliding windows of clip ``i``.

        ``windows`` is float32 ``(n_windows, C, F, window)``; the clip is read
        once.  See :func:`window_starts`.
        """
        clip = self.clip(i)
        starts = window_starts(clip.shape[-1], window, hop)
        out = np.stack([take_frames(clip, s, window) for s in starts])
        out = np.ascontiguousarray(out, dtype=np.float32)
        return self._check_finite(out, i), starts

    def subset(self, indices):
        """A dataset of the selected rows (shares no state with ``self``)."""
        indices = np.asarray(indices)
        pick = lambda a: None if a is None else a[indices]  # noqa: E731
        if self.source:
            return _ClipDataset(
                self.X,
                pick(self.y),
                pick(self.sample_weight),
                pick(self.mask),
                rows=self.rows[indices],
            )
        if isinstance(self.X, np.ndarray):
            X = self.X[indices]
        else:
            X = [self.X[i] for i in indices]
        return _ClipDataset(X, pick(self.y), pick(self.sample_weight), pick(self.mask))


# --------------------------------------------------------------------------
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
        # counted, not drawn: asking for the length never moves the RNG
        return len(self.batch_sizes())

    def batch_sizes(self):
        """The size of every batch of an epoch, in no particular order (no draw)."""
        sizes = []
        for count in np.unique(self.lengths, return_counts=True)[1]:
            full, rest = divmod(int(count), self.batch_size)
            group = [self.batch_size] * full + ([rest] if rest else [])
            if self.merge_singletons and len(group) > 1 and group[-1] == 1:
                group[-2] += 1
                group.pop()
            sizes.extend(group)
        return sizes


def loader_workers(device, source, cpu_count=None):
    """DataLoader worker processes for training on ``device``.

    Some only where they can pay: on CUDA, when the clips come from a clip
    source (a :class:`~sklearn_rfcnn.datasets.SpectrogramStore` read from
    disk), ``min(4, cpu_count // 2)``, so that reads (and waits for cold
    pages) overlap the GPU's step.  None on a CPU: there the reads and the
    step share the same cores, and ``benchmarks/bench_store.py`` measures
    training from a store at the speed of the same clips in memory (reads run
    at about 100 times the step's rate), so workers could only take cores
    from the compute.  None for arrays in memory (nothing to overlap).

    Parameters
    ----------
    device : str
        The resolved torch device, e.g. ``"cpu"`` or ``"cuda:0"``.
    source : bool
        Whether the training data is a clip source.
    cpu_count : int, default=None
        CPUs available (None: :func:`os.cpu_count`).

    Returns
    -------
    n_workers : int

    Examples
    --------
    >>> loader_workers("cuda:0", True, cpu_count=16), loader_workers("cpu", True)
    (4, 0)
    >>> loader_workers("cuda", False, cpu_count=16)
    0
    """
    if not (source and str(device).startswith("cuda")):
        return 0
    if cpu_count is None:
        cpu_count = os.cpu_count() or 1
    return min(4, cpu_count // 2)


def _n_batches(n, batch_size):
    """Batches of ``n`` items with a trailing single item merged (at least 1)."""
    k = math.ceil(n / batch_size)
    if k > 1 and n % batch_size == 1:
        k -= 1
    return max(k, 1)


def _chunks(order, batch_size):
    """Cut ``order`` into batches; a trailing batch of one joins the previous."""
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2] = np.concatenate([batches[-2], batches.pop()])
    return batches


class _CropBatchSampler(Sampler):
    """Training batches of equal-length crops, drawn afresh every epoch.

    With ``crop_frames``: the clips in a random order, cut into batches of
    ``batch_size``; each clip contributes one crop of ``crop_frames`` frames
    at a uniformly random start (a clip shorter than that is tiled, so its
    crop starts at frame 0).  Without it (clips of different lengths): the
    clips in a random order are sorted by length within pools of
    ``_SORT_POOL_BATCHES`` batches, cut into batches of ``batch_size``, and
    each clip of a batch is cropped at a random start to the shortest clip of
    its batch; the batch order is then shuffled.  Either way only the last
    batch of an epoch may be smaller, and a last batch of one clip is merged
    into the previous one (batch normalisation cannot train on one example).

    Yields lists of ``(i, start, n_frames)`` keys of :class:`_ClipDataset`.
    All draws come from torch's (forked, seeded) default RNG, made for the
    whole epoch when iteration starts.
    """

    def __init__(self, lengths, batch_size, crop_frames=None):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.crop_frames = None if crop_frames is None else int(crop_frames)

    def _plan(self):
        n = len(self.lengths)
        order = torch.randperm(n).numpy()
        if self.crop_frames is None:
            pool = _SORT_POOL_BATCHES * self.batch_size
            order = np.concatenate(
                [
                    part[np.argsort(self.lengths[part], kind="stable")]
                    for part in np.split(order, range(pool, n, pool))
                ]
            )
        batches = _chunks(order, self.batch_size)
        if self.crop_frames is None and len(batches) > 1:
            batches = [batches[i] for i in torch.randperm(len(batches)).tolist()]
        plan = []
        for batch in batches:
            lengths = self.lengths[batch]
            size = self.crop_frames or int(lengths.min())
            span = np.maximum(lengths - size, 0) + 1
            u = torch.rand(len(batch), dtype=torch.float64).numpy()
            starts = np.minimum((u * span).astype(np.int64), span - 1)
            plan.append([(int(i), int(s), size) for i, s in zip(batch, starts)])
        return plan

    def __iter__(self):
        yield from self._plan()

    def __len__(self):
        return _n_batches(len(self.lengths), self.batch_size)

    def batch_sizes(self):
        """The size of every batch of an epoch, in no particular order (no draw)."""
        return [len(b) for b in _chunks(np.arange(len(self.lengths)), self.batch_size)]


class _WindowBatchSampler(Sampler):
    """The sliding windows of whole clips, in clip order (see :func:`window_starts`).

    A batch holds the windows of consecutive clips, at most ``batch_size``
    windows unless a single clip has more (it then forms a batch of its own);
    a clip's windows are never split between batches, so a batch can be
    aggregated per clip.  Yields lists of ``(i, start, window)`` keys.
    """

    def __init__(self, lengths, batch_size, window, hop):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.window = int(window)
        self.hop = int(hop)

    def _batches(self):
        batch = []
        for i, length in enumerate(self.lengths):
            keys = [
                (i, int(s), self.window)
                for s in window_starts(length, self.window, self.hop)
            ]
            if batch and len(batch) + len(keys) > self.batch_size:
                yield batch
                batch = []
            batch.extend(keys)
        if batch:
            yield batch

    def __iter__(self):
        yield from self._batches()

    def __len__(self):
        return sum(1 for _ in self._batches())


class _ShardBatchSampler(Sampler):
    """This process's part of every batch of ``batch_sampler`` (data parallelism).

    Every process holds the same ``batch_sampler``; the epoch's plan (the
    list of global batches) is drawn by process 0 only, from its torch RNG,
    and broadcast to the others (one :func:`torch.distributed.broadcast_object_list`
    per epoch), so all processes agree on it whatever their own RNGs did.
    Each global batch is cut into ``num_shards`` contiguous parts whose sizes
    differ by at most one (:func:`numpy.array_split`); process ``shard``
    gets part ``shard``.  The parts of one step together are exactly the
    one-process batch.  A batch with fewer clips than processes (only
    possible for a tiny dataset or a tiny trailing batch) is skipped on
    every process, since a process cannot take an empty step.

    Accelerate's own ``BatchSamplerShard`` is not used: in its ``split_batches``
    mode it yields only batches of exactly ``batch_size`` (dropping a merged
    trailing batch and the partial batches of length buckets) and pads the
    last batch with repeated clips.

    Parameters
    ----------
    batch_sampler : Sampler
        The one-process batch sampler (global batches).
    num_shards : int >= 1
        Number of processes.
    shard : int in [0, num_shards)
        This process's index.
    """

    def __init__(self, batch_sampler, num_shards, shard):
        self.batch_sampler = batch_sampler
        self.num_shards = int(num_shards)
        self.shard = int(shard)

    def _plan(self):
        plan = None
        if self.shard == 0:
            plan = [list(batch) for batch in self.batch_sampler]
        if self.num_shards > 1:
            import torch.distributed as dist

            box = [plan]
            dist.broadcast_object_list(box, src=0)
            plan = box[0]
        return plan

    def __iter__(self):
        for batch in self._plan():
            if len(batch) < self.num_shards:
                continue
            parts = np.array_split(np.arange(len(batch)), self.num_shards)
            yield [batch[i] for i in parts[self.shard]]

    def __len__(self):
        sizes = getattr(self.batch_sampler, "batch_sizes", None)
        if sizes is None:
            return len(self.batch_sampler)
        return sum(1 for n in sizes() if n >= self.num_shards)


def _bucket_loader(dataset, batch_size, shuffle=False, pin_memory=False, **kwargs):
    """A DataLoader over equal-length batches of whole clips."""
    sampler = _BucketBatchSampler(
        dataset.lengths, batch_size, shuffle=shuffle, merge_singletons=shuffle
    )
    return DataLoader(dataset, batch_sampler=sampler, pin_memory=pin_memory, **kwargs)


def _train_loader(
    dataset, batch_size, shuffle=True, crop_frames=None, shards=None, **kwargs
):
    """The training DataLoader (skorch's ``iterator_train``).

    With ``crop_frames``: random crops (:class:`_CropBatchSampler`).  Without
    it: whole clips batched by length when every clip has the same length
    (exactly as before crops existed), else length-sorted batches cropped to
    their shortest clip.  ``shards=(num_processes, process_index)`` gives this
    process its part of every batch (:class:`_ShardBatchSampler`; data
    parallel training); None is the whole batch.  Other keyword arguments
    (``pin_memory``, ``num_workers``, ...) go to the ``DataLoader``.
    """
    lengths = dataset.lengths
    if crop_frames is None and len(np.unique(lengths)) <= 1:
        sampler = _BucketBatchSampler(
            lengths, batch_size, shuffle=shuffle, merge_singletons=shuffle
        )
    else:
        sampler = _CropBatchSampler(lengths, batch_size, crop_frames=crop_frames)
    if shards is not None:
        sampler = _ShardBatchSampler(sampler, *shards)
    return DataLoader(dataset, batch_sampler=sampler, **kwargs)


def _valid_loader(dataset, batch_size, shuffle=False, window=None, hop=None, **kwargs):
    """The validation DataLoader (skorch's ``iterator_valid``).

    With a ``window`` (``crop_frames``): the sliding windows of each clip,
    aggregated per clip by the net's validation step; without: whole clips
    batched by length.
    """
    if window is None:
        return _bucket_loader(dataset, batch_size, shuffle=False, **kwargs)
    sampler = _WindowBatchSampler(dataset.lengths, batch_size, window, hop)
    return DataLoader(dataset, batch_sampler=sampler, **kwargs)
