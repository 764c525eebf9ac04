"""Tests for sklearn_rfcnn.receptive_field: the rho rule, the RF recursion, units."""

import librosa
import numpy as np
import pytest
from _helpers import assert_imports_none_of

from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.inspection import describe_pipeline
from sklearn_rfcnn.receptive_field import (
    RF,
    LayerSpec,
    RFDescription,
    block_kernels,
    cp_resnet_layers,
    describe_receptive_field,
    hz_to_mel,
    kernel_schedule,
    max_rho,
    mel_frequencies,
    mel_to_hz,
    pool_positions,
    receptive_field,
    receptive_field_trace,
)

# method.md §1.2 worked examples: (k1, k2) per block, 12 blocks.
_S = [(1, 1)] * 4
KERNEL_TABLE = {
    0: [(3, 1), (1, 1), (1, 1), (1, 1), *_S, *_S],
    2: [(3, 1), (3, 3), (1, 1), (1, 1), *_S, *_S],
    3: [(3, 1), (3, 3), (3, 1), (1, 1), *_S, *_S],
    5: [(3, 1), (3, 3), (3, 3), (3, 1), *_S, *_S],
    7: [(3, 1), (3, 3), (3, 3), (3, 3), (3, 1), (1, 1), (1, 1), (1, 1), *_S],
    8: [(3, 1), (3, 3), (3, 3), (3, 3), (3, 3), (1, 1), (1, 1), (1, 1), *_S],
    10: [(3, 1), (3, 3), (3, 3), (3, 3), (3, 3), (3, 3), (1, 1), (1, 1), *_S],
    22: [(3, 1)] + [(3, 3)] * 11,
}

# method.md §1.3, exact max RF.
RF_TABLE = {
    0: 23, 1: 31, 2: 39, 3: 55, 4: 71, 5: 87, 6: 103, 7: 135, 8: 167, 9: 199,
    10: 231, 11: 263, 12: 295, 14: 359, 16: 423, 18: 487, 20: 551, 22: 615,
}  # fmt: skip


# --------------------------------------------------------------------------- #
# kernel schedule
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("rho", sorted(KERNEL_TABLE))
def test_kernel_schedule_matches_method_table(rho):
    assert kernel_schedule(rho) == KERNEL_TABLE[rho]


@pytest.mark.parametrize("rho", range(23))
def test_kernel_schedule_rule_for_every_rho(rho):
    flat = [k for pair in kernel_schedule(rho) for k in pair]
    assert len(flat) == 24
    assert flat[:2] == [3, 1]
    # the first rho convs after block 1 are 3x3, the rest 1x1
    assert flat[2:] == [3] * rho + [1] * (22 - rho)
    assert flat.count(3) == rho + 1


def test_kernel_schedule_generalises_to_other_depths():
    assert len(kernel_schedule(0, depth=8)) == 3
    assert len(kernel_schedule(0, depth=44)) == 21
    assert max_rho(8) == 4 and max_rho(44) == 40
    flat = [k for pair in kernel_schedule(4, depth=8) for k in pair]
    assert flat == [3, 1, 3, 3, 3, 3]
    assert pool_positions(26) == (1, 2, 4)
    assert pool_positions(20) == (1, 2, 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rho": -1}, r"rho=-1 is out of range"),
        ({"rho": 23}, r"rho=23 .*0\.\.22"),
        ({"rho": 5, "depth": 8}, r"rho=5 .*depth=8"),
        ({"rho": 2.0}, r"rho=2\.0 must be an integer"),
        ({"rho": True}, r"rho=True must be an integer"),
        ({"rho": 2, "depth": 25}, r"depth=25 must have the form 6\*n \+ 2"),
        ({"rho": 2, "depth": 2}, r"depth=2 is out of range"),
    ],
)
def test_kernel_schedule_validates(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        kernel_schedule(**kwargs)


def test_parameter_error_is_value_error():
    with pytest.raises(ValueError):
        kernel_schedule(99)


def test_block_kernels_per_axis():
    kernels = block_kernels(rho_f=0, rho_t=7)
    assert [k1[0] for k1, _ in kernels] == [k1 for k1, _ in kernel_schedule(0)]
    assert [k2[1] for _, k2 in kernels] == [k2 for _, k2 in kernel_schedule(7)]
    assert block_kernels(rho=5) == [((a, a), (b, b)) for a, b in kernel_schedule(5)]
    with pytest.raises(ParameterError, match="rho_t=40"):
        block_kernels(rho_t=40)


# --------------------------------------------------------------------------- #
# RF recursion
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(("rho", "expected"), sorted(RF_TABLE.items()))
def test_exact_rf_matches_method_table(rho, expected):
    assert receptive_field(cp_resnet_layers(rho)) == RF(expected, expected)


@pytest.mark.parametrize("rho", range(23))
def test_exact_rf_closed_form(rho):
    if rho == 0:
        expected = 23
    elif rho == 1:
        expected = 31
    elif rho <= 6:
        expected = 16 * rho + 7
    else:
        expected = 32 * rho - 89
    assert receptive_field(cp_resnet_layers(rho)).time == expected


@pytest.mark.parametrize(("rho_f", "rho_t"), [(2, 7), (7, 0), (0, 22)])
def test_per_axis_rf(rho_f, rho_t):
    rf = receptive_field(cp_resnet_layers(rho_f=rho_f, rho_t=rho_t))
    assert rf == RF(RF_TABLE[rho_f], RF_TABLE[rho_t])
    assert rf.freq == rf[0] and rf.time == rf[1]


def test_recursion_by_hand():
    layers = [
        LayerSpec(5, stride=2),
        LayerSpec((3, 1)),
        LayerSpec(2, stride=2, kind="pool"),
        LayerSpec(3, dilation=(1, 2)),
    ]
    # freq: 1+4=5 (j2) +2*2=9 +1*2=11 (j4) +2*4=19
    # time: 1+4=5 (j2) +0=5 +1*2=7 (j4) +4*4=23
    assert receptive_field(layers) == RF(19, 23)
    jumps = [jump for _, _, jump in receptive_field_trace(layers)]
    assert jumps == [RF(2, 2), RF(2, 2), RF(4, 4), RF(4, 4)]
    assert receptive_field([]) == RF(1, 1)


def test_receptive_field_duck_typing():
    class Net:
        def rf_layers(self):
            return cp_resnet_layers(rho=7)

    assert receptive_field(Net()) == RF(135, 135)
    assert receptive_field(tuple(cp_resnet_layers(rho=2))) == RF(39, 39)


@pytest.mark.parametrize("bad", [42, object(), [LayerSpec(3), (3, 1)]])
def test_receptive_field_rejects_non_layers(bad):
    with pytest.raises(ParameterError):
        receptive_field(bad)


@pytest.mark.parametrize(
    "kwargs",
    [{"kernel_size": 0}, {"kernel_size": 3, "stride": (1, 0)}, {"kernel_size": "a"}],
)
def test_layer_spec_validates(kwargs):
    with pytest.raises(ParameterError):
        LayerSpec(**kwargs)


def test_layer_spec_normalises_pairs():
    spec = LayerSpec(np.int64(3), stride=(2, 1))
    assert spec.kernel_size == (3, 3) and spec.stride == (2, 1)
    assert LayerSpec(3, dilation=(2, 3)).effective_kernel == (5, 7)


def test_cp_resnet_layers_structure():
    layers = cp_resnet_layers(rho=5)
    pools = [layer.name for layer in layers if layer.kind == "pool"]
    assert pools == ["stage1.block1.pool", "stage1.block2.pool", "stage1.block4.pool"]
    assert layers[0].kernel_size == (5, 5) and layers[0].stride == (2, 2)
    assert layers[-1].kernel_size == (1, 1)


def test_module_imports_neither_torch_nor_sklearn():
    assert_imports_none_of(
        "import sklearn_rfcnn.receptive_field as r; "
        "r.describe_receptive_field(r.receptive_field(r.cp_resnet_layers(5)))",
        ("torch", "sklearn"),
    )


# --------------------------------------------------------------------------- #
# units
# --------------------------------------------------------------------------- #
def test_mel_scale_matches_librosa_slaney():
    f = np.array([0.0, 100.0, 999.0, 1000.0, 4000.0, 11025.0])
    np.testing.assert_allclose(hz_to_mel(f), librosa.hz_to_mel(f, htk=False))
    m = np.linspace(0, 45, 17)
    np.testing.assert_allclose(mel_to_hz(m), librosa.mel_to_hz(m, htk=False))
    np.testing.assert_allclose(
        mel_frequencies(258, 20.0, 8000.0),
        librosa.mel_frequencies(258, fmin=20.0, fmax=8000.0),
    )


def test_describe_time_axis():
    d = describe_receptive_field(RF(87, 135), sr=22050, hop_length=512, n_mels=256)
    assert isinstance(d, RFDescription)
    assert d.time_frames == 135 and d.freq_bins == 87
    assert d.time_seconds == pytest.approx(135 * 512 / 22050)
    assert d.time_seconds == pytest.approx(3.13, abs=0.01)
    # method.md §1.3: RF 87 is about 2.0 s at 22.05 kHz and 1.0 s at 44.1 kHz
    assert describe_receptive_field(87, sr=22050).time_seconds == pytest.approx(
        2.0, 0.02
    )
    assert describe_receptive_field(87, sr=44100).time_seconds == pytest.approx(
        1.0, 0.02
    )


def test_describe_frequency_spans():
    n_mels, fmin, fmax = 128, 30.0, 8000.0
    d = describe_receptive_field(
        (11, 1), sr=16000, hop_length=256, n_mels=n_mels, fmin=fmin, fmax=fmax
    )
    edges = librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax)
    # 11 bins centred on band 0 -> bands 0..5, from edge 0 to edge 7
    assert d.hz_spans["low"] == pytest.approx((fmin, edges[7]))
    # centred on band 64 -> bands 59..69
    assert d.hz_spans["mid"] == pytest.approx((edges[59], edges[71]))
    # centred on the top band -> bands 122..127, up to fmax
    assert d.hz_spans["high"] == pytest.approx((edges[122], fmax))
    widths = [hi - lo for lo, hi in d.hz_spans.values()]
    assert widths[0] < widths[1] < widths[2]  # mel bands widen with frequency
    assert d.freq_fraction == pytest.approx(11 / 128)


def test_describe_rf_larger_than_axis():
    d = describe_receptive_field(615, sr=22050, n_mels=256)
    assert d.hz_spans["mid"] == pytest.approx((0.0, 11025.0))
    assert d.freq_fraction == 1.0


def test_describe_str_is_readable():
    text = str(describe_receptive_field(135, sr=22050, hop_length=512, n_mels=256))
    assert "135 x 135 px" in text
    assert "3.13 s" in text
    assert "lowest band" in text and "highest band" in text and "Hz" in text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rf": 0}, "rf.freq=0"),
        ({"rf": "big"}, "rf='big'"),
        ({"rf": 5, "sr": 0}, "sr=0"),
        ({"rf": 5, "hop_length": 0}, "hop_length=0"),
        ({"rf": 5, "n_mels": 0}, "n_mels=0"),
        ({"rf": 5, "fmin": -1.0}, "fmin=-1.0"),
        ({"rf": 5, "sr": 16000, "fmax": 9000.0}, "fmax=9000.0"),
        ({"rf": 5, "fmin": 500.0, "fmax": 100.0}, "fmax=100.0"),
    ],
)
def test_describe_validates(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        describe_receptive_field(**kwargs)


# --------------------------------------------------------------------------- #
# describe_pipeline
# --------------------------------------------------------------------------- #
def _fake_steps():
    from sklearn.base import BaseEstimator, TransformerMixin

    class MelSpectrogram(TransformerMixin, BaseEstimator):
        def __init__(self, sr=22050, hop_length=512, n_mels=256, fmin=0.0, fmax=None):
            self.sr = sr
            self.hop_length = hop_length
            self.n_mels = n_mels
            self.fmin = fmin
            self.fmax = fmax

        def fit(self, X, y=None):
            return self

        def transform(self, X):
            return X

    class RFCNNClassifier(BaseEstimator):
        def __init__(self, rho=7):
            self.rho = rho

        def fit(self, X, y=None):
            self.receptive_field_ = receptive_field(cp_resnet_layers(self.rho))
            return self

    return MelSpectrogram, RFCNNClassifier


def test_describe_pipeline_reads_mel_and_cnn():
    from sklearn.pipeline import Pipeline

    Mel, Clf = _fake_steps()
    pipe = Pipeline(
        [("mel", Mel(sr=44100, hop_length=441, n_mels=128)), ("clf", Clf())]
    )
    pipe.fit(np.zeros((2, 3)), [0, 1])
    d = describe_pipeline(pipe)
    assert d.rf == RF(135, 135)
    assert d.time_seconds == pytest.approx(135 * 441 / 44100)
    assert d.n_mels == 128 and d.fmax == 22050.0


def test_describe_pipeline_unfitted_and_missing_steps():
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    Mel, Clf = _fake_steps()
    with pytest.raises(NotFittedError, match="not fitted"):
        describe_pipeline(Pipeline([("mel", Mel()), ("clf", Clf())]))
    with pytest.raises(ParameterError, match="no MelSpectrogram step"):
        describe_pipeline(Pipeline([("sc", StandardScaler()), ("clf", Clf().fit(0))]))
    with pytest.raises(ParameterError, match="no CNN step"):
        describe_pipeline(Pipeline([("mel", Mel()), ("sc", StandardScaler())]))
    with pytest.raises(ParameterError, match="no 'steps'"):
        describe_pipeline(Clf())
