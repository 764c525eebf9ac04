"""Crops, windows, taggrams and clip sources of the RF-CNN estimators (issue #13).

The policies under test (user guide, "Long recordings: crops, windows and
taggrams"): ``crop_frames`` trains on full batches of random crops and
predicts by sliding windows aggregated per clip; without it, clips of
different lengths train in length-sorted batches cropped to their shortest
clip; a clip shorter than a crop or window is tiled; any object following the
clip-source protocol is read lazily, one clip (or crop) per item.
"""

import contextlib

import numpy as np
import pytest
import torch
from scipy.special import expit, softmax
from skorch.callbacks import Callback

from sklearn_rfcnn import RFCNNClassifier, RFCNNEmbedder
from sklearn_rfcnn.estimators import _net as net_module
from sklearn_rfcnn.estimators._data import (
    _BucketBatchSampler,
    _ClipDataset,
    _CropBatchSampler,
)
from sklearn_rfcnn.estimators._length import take_frames, window_starts
from sklearn_rfcnn.estimators._net import _embed
from sklearn_rfcnn.exceptions import DataError, ParameterError, RFCNNWarning
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS, make_band_tags

# the tiling warning is tested where it matters
pytestmark = pytest.mark.filterwarnings("ignore:.*are tiled:UserWarning")

FAST = {**FAST_CNN_PARAMS, "precision": "32", "channels_last": False}
F = 8


class BatchSpy(Callback):
    """Records ``(training, X shape, clip indices)`` of every batch."""

    def initialize(self):
        self.batches = []
        self.valid_preds = []
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        Xi, yi = batch
        clips = yi["clip"].tolist() if "clip" in yi else None
        self.batches.append((training, tuple(Xi.shape), clips, Xi.sum().item()))

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if not training:
            self.valid_preds.append(tuple(y_pred.shape))


def _spy(est):
    return dict(est.net_.callbacks_)["spy"]


def _train_batches(est):
    return [b for b in _spy(est).batches if b[0]]


@pytest.fixture(scope="module")
def ragged():
    """40 clips of 40 different lengths (12..51 frames) and a tag matrix."""
    X, Y = make_band_tags(40, n_tags=2, F=F, T=51, seed=3, strength=2.0)
    lengths = np.random.default_rng(0).permutation(np.arange(12, 52))
    return [x[:, :t] for x, t in zip(X, lengths)], Y, lengths


class ArraySource:
    """The clip-source protocol over in-memory arrays, counting reads."""

    __rfcnn_clip_source__ = True

    def __init__(self, clips, checksum=None):
        self._clips = [np.asarray(c, dtype=np.float32)[None] for c in clips]
        self.lengths = np.array([c.shape[-1] for c in self._clips], dtype=np.int64)
        self.clip_shape = self._clips[0].shape[:2]
        if checksum is not None:
            self.front_end_checksum = checksum
        self.calls = 0

    def __len__(self):
        return len(self._clips)

    def __getitem__(self, i):
        self.calls += 1
        return self._clips[i]


# ---------------------------------------------------------------------------
# training batches
# ---------------------------------------------------------------------------
def test_crops_train_in_full_batches_with_mixup(ragged, monkeypatch):
    clips, Y, _ = ragged
    mixed = []
    draw = net_module.draw_mixup

    def spy_mixup(X, rng, alpha):
        out = draw(X, rng, alpha)
        mixed.append((X.shape[0], out[1] is not None))
        return out

    monkeypatch.setattr(net_module, "draw_mixup", spy_mixup)
    params = {**FAST, "batch_size": 12, "max_epochs": 2, "mixup_alpha": 0.3}
    with pytest.warns(RFCNNWarning, match=r"4 of 40 training clips are shorter"):
        clf = RFCNNClassifier(
            **params, crop_frames=16, callbacks=[("spy", BatchSpy())]
        ).fit(clips, Y)
    batches = _train_batches(clf)
    # 40 clips, batch_size 12: 12, 12, 12 and a documented last batch of 4
    assert [b[1][0] for b in batches] == [12, 12, 12, 4] * 2
    assert all(b[1][1:] == (1, F, 16) for b in batches)
    # one crop per clip per epoch
    assert sorted(i for b in batches[:4] for i in b[2]) == list(range(40))
    assert mixed and all(ok for _, ok in mixed)
    assert clf.predict_proba(clips).shape == Y.shape


def test_without_crops_ragged_clips_train_in_full_sorted_batches(ragged):
    clips, Y, lengths = ragged
    clf = RFCNNClassifier(
        **{**FAST, "batch_size": 8}, callbacks=[("spy", BatchSpy())]
    ).fit(clips, Y)
    batches = _train_batches(clf)
    assert [b[1][0] for b in batches] == [8] * 10
    for _, shape, ids, _ in batches:
        # each batch is cropped to its shortest clip; no clip is left out
        assert shape[-1] == lengths[ids].min()
    assert sorted(i for b in batches[:5] for i in b[2]) == list(range(40))
    # sorted within pools: a batch spans a narrow range of lengths
    spans = [np.ptp(lengths[b[2]]) for b in batches]
    assert np.mean(spans) < 10
    # prediction sees whole clips: a clip alone gives the same output
    proba = clf.predict_proba(clips)
    np.testing.assert_allclose(clf.predict_proba([clips[3]])[0], proba[3], rtol=1e-5)


def test_equal_length_input_keeps_the_bucket_sampler():
    X, Y = make_band_tags(24, n_tags=2, F=F, T=20, seed=0)
    clf = RFCNNClassifier(**FAST).fit(X, Y)
    loader = clf.net_.get_iterator(_ClipDataset(X[:, None], Y), training=True)
    assert isinstance(loader.batch_sampler, _BucketBatchSampler)


def test_crop_draws_are_seeded(ragged):
    clips, Y, _ = ragged

    def draws(seed):
        clf = RFCNNClassifier(
            **{**FAST, "random_state": seed, "max_epochs": 1},
            crop_frames=10,
            callbacks=[("spy", BatchSpy())],
        ).fit(clips, Y)
        return [(b[2], b[3]) for b in _train_batches(clf)]

    assert draws(0) == draws(0)
    assert draws(0) != draws(1)
    # the sampler alone: the forked, seeded torch RNG decides every start
    lengths = np.arange(12, 52)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        a = list(_CropBatchSampler(lengths, 8, crop_frames=10))
        torch.manual_seed(5)
        b = list(_CropBatchSampler(lengths, 8, crop_frames=10))
        c = list(_CropBatchSampler(lengths, 8, crop_frames=10))  # next epoch
    assert a == b != c
    for batch in a:
        for i, start, size in batch:
            assert size == 10 and 0 <= start <= lengths[i] - 10


# ---------------------------------------------------------------------------
# windowed prediction and validation
# ---------------------------------------------------------------------------
def _by_hand(module, clip, window, hop, features=False):
    starts = window_starts(clip.shape[-1], window, hop)
    W = np.stack([take_frames(clip[None], s, window) for s in starts])
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(W, dtype=np.float32))
        out = _embed(module, x) if features else module(x)
    return out.numpy().astype(np.float64), starts


@pytest.fixture(scope="module")
def windowed():
    X, Y = make_band_tags(32, n_tags=2, F=F, T=24, seed=1, strength=2.0)
    clf = RFCNNClassifier(**FAST, crop_frames=16, window_hop=6).fit(X, Y)
    return clf, X, Y


def test_windowed_predict_proba_is_the_aggregate_of_windows(windowed):
    clf, X, _ = windowed
    rng = np.random.default_rng(7)
    long_clip = rng.normal(size=(F, 70)).astype(np.float32)
    short_clip = long_clip[:, :9]
    module = clf.net_.module_.eval()
    logits, starts = _by_hand(module, long_clip, 16, 6)
    assert starts.tolist() == [0, 6, 12, 18, 24, 30, 36, 42, 48, 54]
    proba = clf.predict_proba([long_clip, short_clip, X[0]])
    np.testing.assert_allclose(proba[0], expit(logits.mean(axis=0)), rtol=1e-5)
    # a clip shorter than the window is one window, tiled up to it
    short_logits, _ = _by_hand(module, short_clip, 16, 6)
    tiled = np.tile(short_clip, 2)[:, :16]
    with torch.no_grad():
        ref = module(torch.from_numpy(tiled[None, None])).numpy()
    np.testing.assert_allclose(short_logits, ref, rtol=1e-5)
    np.testing.assert_allclose(proba[1], expit(short_logits[0]), rtol=1e-5)
    # aggregate="max": the most confident window per tag
    clf.set_params(aggregate="max")
    try:
        proba_max = clf.predict_proba([long_clip])
    finally:
        clf.set_params(aggregate="mean")
    np.testing.assert_allclose(proba_max[0], expit(logits.max(axis=0)), rtol=1e-5)
    # per-window probabilities of the taggram are the same windows
    [(frames, times)] = clf.predict_proba_frames([long_clip], sr=8000, hop_length=64)
    np.testing.assert_allclose(frames, expit(logits), rtol=1e-5)
    np.testing.assert_allclose(times, (starts + 7.5) * 64 / 8000)


def test_windowed_multiclass_and_embedder():
    X, Y = make_band_tags(32, n_tags=2, F=F, T=24, seed=2, strength=2.0)
    y = Y[:, 0] + 2 * Y[:, 1]
    clip = np.random.default_rng(3).normal(size=(F, 40)).astype(np.float32)
    clf = RFCNNClassifier(**FAST, crop_frames=16).fit(X, y)
    logits, _ = _by_hand(clf.net_.module_.eval(), clip, 16, 8)
    np.testing.assert_allclose(
        clf.predict_proba([clip])[0], softmax(logits.mean(axis=0)), rtol=1e-5
    )
    emb = RFCNNEmbedder.from_classifier(clf)
    features, _ = _by_hand(emb.net_.module_, clip, 16, 8, features=True)
    np.testing.assert_allclose(
        emb.transform([clip])[0], features.mean(axis=0), rtol=1e-5, atol=1e-6
    )


def test_validation_uses_the_prediction_windows(ragged):
    clips, Y, _ = ragged
    clf = RFCNNClassifier(
        **{**FAST, "validation_fraction": 0.25},
        crop_frames=16,
        early_stopping=True,
        callbacks=[("spy", BatchSpy())],
    ).fit(clips, Y)
    spy = _spy(clf)
    valid = [b for b in spy.batches if not b[0]]
    assert valid and all(shape[1:] == (1, F, 16) for _, shape, _, _ in valid)
    # one epoch's windows: every hold-out clip cut as prediction cuts it
    n_clips, n_windows = 0, 0
    for _, shape, ids, _ in valid[: len(valid) // clf.history_[-1, "epoch"]]:
        n_clips += len(np.unique(ids))
        n_windows += shape[0]
    assert n_clips == 10
    assert spy.valid_preds[0][0] == len(np.unique(valid[0][2]))  # per clip
    assert n_windows > n_clips
    assert np.isfinite(clf.history_[:, "valid_loss"]).all()
    record = clf.history_[-1, "batches"]
    assert sum(b["valid_batch_size"] for b in record if "valid_batch_size" in b) == 10


# ---------------------------------------------------------------------------
# taggrams
# ---------------------------------------------------------------------------
def test_taggram_peaks_where_the_tag_sounds():
    X, Y = make_band_tags(96, n_tags=2, F=F, T=32, seed=0, strength=2.5)
    clf = RFCNNClassifier(
        **{**FAST, "max_epochs": 12, "batch_size": 16},
        mixup_alpha=0.0,
        roll=0,
        crop_frames=16,
    ).fit(X, Y)
    rng = np.random.default_rng(11)
    clip = rng.normal(size=(F, 128)).astype(np.float32)
    clip[: F // 2, 64:] += 2.5  # tag 0 sounds in the second half only
    sr, hop = 8000, 64
    [(proba, times)] = clf.predict_proba_frames([clip], sr=sr, hop_length=hop)
    starts = window_starts(128, 16, 8)
    np.testing.assert_allclose(times, (starts + (16 - 1) / 2) * hop / sr)
    assert proba.shape == (len(starts), 2)
    half = 64 * hop / sr
    assert times[np.argmax(proba[:, 0])] > half
    first, second = proba[times < half - 0.1, 0], proba[times > half + 0.1, 0]
    assert second.min() > first.max()
    assert second.mean() > 0.5 > first.mean()


def test_taggram_needs_a_window():
    X, Y = make_band_tags(16, n_tags=2, F=F, T=20, seed=0)
    clf = RFCNNClassifier(**FAST).fit(X, Y)
    with pytest.raises(ParameterError, match="window_frames="):
        clf.predict_proba_frames(X)
    frames = clf.predict_proba_frames([X[0], X[1][:, :7]], window_frames=10)
    assert [p.shape for p, _ in frames] == [(3, 2), (1, 2)]
    np.testing.assert_allclose(frames[0][1], (np.array([0, 5, 10]) + 4.5) * 512 / 22050)
    with pytest.raises(ParameterError, match="window_frames"):
        clf.predict_proba_frames(X, window_frames=0)
    with pytest.raises(ParameterError, match="sr="):
        clf.predict_proba_frames(X, sr=0, window_frames=10)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------
def test_crop_longer_than_every_clip_is_an_error(ragged):
    clips, Y, _ = ragged
    with pytest.raises(DataError, match=r"crop_frames=60 is longer than every.*51"):
        RFCNNClassifier(**FAST, crop_frames=60).fit(clips, Y)


def test_crop_on_2d_input_and_hop_longer_than_window_are_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match="2-D"):
        RFCNNClassifier(**FAST, crop_frames=4).fit(
            rng.normal(size=(16, 10)), [0, 1] * 8
        )
    X, Y = make_band_tags(16, n_tags=2, F=F, T=20, seed=0)
    with pytest.raises(ParameterError, match="window_hop=9"):
        RFCNNClassifier(**FAST, crop_frames=8, window_hop=9).fit(X, Y)


def test_tiny_crops_run_through_the_networks_edge_padding():
    X, Y = make_band_tags(16, n_tags=2, F=F, T=20, seed=0)
    clf = RFCNNClassifier(**FAST, crop_frames=2).fit(X, Y)
    assert clf.predict_proba(X).shape == Y.shape


# ---------------------------------------------------------------------------
# clip sources
# ---------------------------------------------------------------------------
class ReadSpy(Callback):
    """Reads of the source before training and at each training batch."""

    def __init__(self, reads):
        self.reads = reads  # a function: not deep-copied with the callback

    def on_train_begin(self, net, **kwargs):
        self.at_begin = self.reads()
        self.at_batch = []

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.at_batch.append((self.reads(), len(batch[0])))


@pytest.mark.parametrize("crop_frames", [16, None])
def test_clip_source_is_read_lazily_per_batch(ragged, crop_frames):
    clips, Y, _ = ragged
    src = ArraySource(clips)
    clf = RFCNNClassifier(
        **FAST,
        crop_frames=crop_frames,
        callbacks=[("reads", ReadSpy(lambda: src.calls))],
    )
    warns = pytest.warns(RFCNNWarning) if crop_frames else contextlib.nullcontext()
    with warns:
        clf.fit(src, Y)
    spy = dict(clf.net_.callbacks_)["reads"]
    assert spy.at_begin == 0  # validation read nothing
    sizes = np.array([n for _, n in spy.at_batch])
    # a batch's clips are read when that batch is loaded, not before
    assert [r for r, _ in spy.at_batch] == np.cumsum(sizes).tolist()
    assert clf.front_end_checksum_ is None
    assert clf._clip_shape == (1, F) and clf.n_features_in_ == F
    before = src.calls
    proba = clf.predict_proba(src)
    assert src.calls - before == len(clips)  # each clip once
    np.testing.assert_allclose(proba, clf.predict_proba(clips), rtol=1e-5)


class ReadingSource(ArraySource):
    """A source with the optional partial read, counting the frames it reads."""

    def __init__(self, clips):
        super().__init__(clips)
        self.frames_read = []

    def read(self, i, start, stop):
        self.frames_read.append(stop - start)
        return self._clips[i][..., start:stop]


def test_crops_from_a_source_read_only_the_crop(ragged):
    clips, Y, lengths = ragged
    src = ReadingSource(clips)
    crop = int(lengths.min())  # no clip needs tiling
    clf = RFCNNClassifier(**FAST, crop_frames=crop).fit(src, Y)
    # every training crop came through read(), with just the crop's frames
    n_batches_frames = len(clips) * FAST["max_epochs"]
    assert src.frames_read[:n_batches_frames] == [crop] * n_batches_frames
    assert src.calls == 0  # nothing read a whole clip while training
    ref = RFCNNClassifier(**FAST, crop_frames=crop).fit(ArraySource(clips), Y)
    np.testing.assert_array_equal(clf.predict_proba(clips), ref.predict_proba(clips))


def test_clip_source_with_worker_processes(ragged):
    clips, Y, _ = ragged
    params = {**FAST, "validation_fraction": 0.25}
    ref = RFCNNClassifier(**params, crop_frames=20).fit(ArraySource(clips), Y)
    workers = RFCNNClassifier(
        **params,
        crop_frames=20,
        net_params={"iterator_train__num_workers": 2, "iterator_valid__num_workers": 2},
    ).fit(ArraySource(clips), Y)
    dataset = _ClipDataset(ArraySource(clips))
    assert workers.net_.get_iterator(dataset, training=True).num_workers == 2
    # the draws are made in the main process: workers change nothing
    np.testing.assert_array_equal(
        workers.predict_proba(clips), ref.predict_proba(clips)
    )


def test_clip_source_metadata_is_checked(ragged):
    clips, Y, _ = ragged
    src = ArraySource(clips)
    with pytest.raises(DataError, match="y has 39 rows but the clip source X holds 40"):
        RFCNNClassifier(**FAST).fit(src, Y[:-1])
    bad = ArraySource(clips)
    bad.lengths = bad.lengths[:-1]
    with pytest.raises(DataError, match="lengths must be an integer array"):
        RFCNNClassifier(**FAST).fit(bad, Y)
    clf = RFCNNClassifier(**FAST).fit(src, Y)
    other = ArraySource([np.zeros((F + 1, 20), np.float32)] * 3)
    with pytest.raises(DataError, match="9 band"):
        clf.predict_proba(other)
    lying = ArraySource(clips[:3])
    lying.lengths = lying.lengths + 1
    with pytest.raises(DataError, match="item 0 of the clip source has shape"):
        clf.predict_proba(lying)


def test_front_end_checksum_is_recorded_and_enforced(ragged, tmp_path):
    clips, Y, _ = ragged
    clf = RFCNNClassifier(**FAST, crop_frames=12).fit(ArraySource(clips, "mel-abc"), Y)
    assert clf.front_end_checksum_ == "mel-abc"
    assert clf.predict_proba(ArraySource(clips[:4], "mel-abc")).shape == (4, 2)
    with pytest.raises(DataError, match=r"'mel-xyz'.*'mel-abc'.*rebuild the store"):
        clf.predict_proba(ArraySource(clips[:4], "mel-xyz"))
    emb = RFCNNEmbedder.from_classifier(clf)
    with pytest.raises(DataError, match="mel-xyz"):
        emb.transform(ArraySource(clips[:4], "mel-xyz"))
    loaded = RFCNNClassifier.load(clf.save(tmp_path / "clf"))
    assert loaded.front_end_checksum_ == "mel-abc"
    assert (loaded.crop_frames, loaded.window_hop, loaded.aggregate) == (
        12,
        None,
        "mean",
    )
    with pytest.raises(DataError, match="mel-xyz"):
        loaded.predict_proba(ArraySource(clips[:4], "mel-xyz"))
    np.testing.assert_array_equal(loaded.predict_proba(clips), clf.predict_proba(clips))
    # arrays: no checksum
    assert RFCNNClassifier(**FAST).fit(clips, Y).front_end_checksum_ is None


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4])
@pytest.mark.parametrize("train", [False, True])
def test_bucket_sampler_length_and_batch_sizes_match_its_batches(batch_size, train):
    """Counted without a draw, yet equal to what an epoch yields.

    ``batch_size=1`` with singleton merging used to be counted as if no batch
    were merged.
    """
    lengths = np.repeat([10, 20, 30], [2, 5, 1])
    sampler = _BucketBatchSampler(
        lengths, batch_size, shuffle=train, merge_singletons=train
    )
    batches = list(sampler)
    assert sorted(map(len, batches)) == sorted(sampler.batch_sizes())
    assert len(sampler) == len(batches)
    assert sum(map(len, batches)) == len(lengths)
