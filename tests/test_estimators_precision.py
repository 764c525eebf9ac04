"""``precision`` and ``channels_last``: the hardware-driven "auto" choice.

The CPU query (:func:`torch.cpu.get_capabilities`) and the CUDA query
(:func:`torch.cuda.is_bf16_supported`) are monkeypatched, so every hardware
case is tested on any machine; the fits check that the decision reaches the
net (an activation's dtype inside the forward pass) and is recorded on the
fitted estimator.
"""

import numpy as np
import pytest
import torch

from sklearn_rfcnn import RFCNNClassifier, RFCNNEmbedder
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS
from sklearn_rfcnn.utils._torch import (
    cpu_avx512,
    cpu_native_bf16,
    resolve_channels_last,
    resolve_precision,
)

FAST = dict(FAST_CNN_PARAMS)

#: What ``torch.cpu.get_capabilities()`` reports on the CPUs of our machines.
AVX2_ONLY = {"avx2": True, "avx512_f": False, "avx512_bf16": False, "amx_bf16": False}
AVX512_BF16 = {"avx2": True, "avx512_f": True, "avx512_bf16": True, "amx_bf16": False}
AMX = {"avx2": True, "avx512_f": True, "avx512_bf16": True, "amx_bf16": True}
#: ... and a CPU that is not x86 (ARM, say).
NO_AVX2 = {"avx2": False, "avx512_f": False, "avx512_bf16": False, "amx_bf16": False}


@pytest.fixture
def cpu_caps(monkeypatch):
    """Make ``torch.cpu.get_capabilities`` report the given flags."""

    def set_caps(caps):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: dict(caps))

    return set_caps


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 8, 12)).astype(np.float32)
    y = np.array(["bass", "drums", "voice"] * 8)
    return X, y


def _conv_dtypes(clf, X, y):
    """Dtypes of the stem convolution's output in training and at inference."""
    seen = {}

    def spy(module, inputs, output):
        seen.setdefault(module.training, set()).add(output.dtype)

    handle = clf.net_.module_.stem.conv.register_forward_hook(spy)
    clf.partial_fit(X, y)
    clf.predict_proba(X)
    handle.remove()
    return seen


@pytest.mark.parametrize(
    "caps, expected, flags",
    [
        (AVX2_ONLY, "32", ()),
        (AVX512_BF16, "bf16", ("avx512_bf16",)),
        (AMX, "bf16", ("amx_bf16", "avx512_bf16")),
    ],
)
def test_auto_precision_on_cpu_follows_native_bf16(cpu_caps, caps, expected, flags):
    cpu_caps(caps)
    assert cpu_native_bf16() == flags
    assert resolve_precision("auto", "cpu") == expected
    # an explicit value always wins, whatever the CPU
    for explicit in ("32", "bf16", "16"):
        assert resolve_precision(explicit, "cpu") == explicit


#: ``/proc/cpuinfo`` flag lines of the three kinds of CPU above.
CPUINFO_FLAGS = {
    "avx2": "fpu sse4_2 avx avx2 fma",
    "avx512_bf16": "fpu avx2 avx512f avx512bw avx512_bf16 avx512_vnni",
    "amx": "fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8",
}


@pytest.mark.parametrize(
    "kind, expected, flags, avx512",
    [
        ("avx2", "32", (), False),
        ("avx512_bf16", "bf16", ("avx512_bf16",), True),
        ("amx", "bf16", ("amx_bf16", "avx512_bf16"), True),
    ],
)
def test_a_torch_without_the_capability_query_reads_proc_cpuinfo(
    monkeypatch, tmp_path, kind, expected, flags, avx512
):
    from sklearn_rfcnn.utils import _torch

    cpuinfo = tmp_path / "cpuinfo"
    lines = ["processor\t: 0", "model name\t: Some CPU", "flags\t\t: "]
    cpuinfo.write_text("\n".join(lines) + CPUINFO_FLAGS[kind] + "\n")
    read = _torch.proc_cpuinfo_flags
    monkeypatch.setattr(_torch, "proc_cpuinfo_flags", lambda: read(cpuinfo))
    # torch before 2.1x has no torch.cpu.get_capabilities
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    assert cpu_native_bf16() == flags
    assert cpu_avx512() is avx512
    assert resolve_precision("auto", "cpu") == expected


@pytest.mark.parametrize(
    "isa, native", [("AVX2", False), ("avx512_core", False), ("", True)]
)
def test_onednn_capped_below_bf16_counts_as_no_native_bf16(
    cpu_caps, monkeypatch, isa, native
):
    cpu_caps(AMX)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    assert bool(cpu_native_bf16()) is native
    assert resolve_precision("auto", "cpu") == ("bf16" if native else "32")
    # capped at AVX2 it is an AVX2 machine for the memory format too
    assert cpu_avx512() is (isa.upper() != "AVX2")


@pytest.mark.parametrize("bf16_supported, expected", [(True, "bf16"), (False, "16")])
def test_auto_precision_on_cuda(monkeypatch, bf16_supported, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    assert resolve_precision("auto", "cuda") == expected
    assert resolve_precision("auto", "cuda:1") == expected
    assert resolve_precision("32", "cuda") == "32"


def test_auto_precision_elsewhere_is_float32():
    assert resolve_precision("auto", "mps") == "32"


@pytest.mark.parametrize(
    "caps, device, precision, expected",
    [
        (AVX2_ONLY, "cpu", "32", True),  # with NCHW weight gradients (_conv_grad)
        (NO_AVX2, "cpu", "32", False),  # not measured: the default layout
        (AVX2_ONLY, "cpu", "bf16", True),
        (AVX512_BF16, "cpu", "32", True),
        (AVX512_BF16, "cpu", "bf16", True),
        (AMX, "cpu", "bf16", True),
        (AVX2_ONLY, "cuda", "bf16", True),
        (AVX2_ONLY, "cuda", "16", True),
        (AVX2_ONLY, "cuda", "32", False),
        (AMX, "mps", "32", False),
    ],
)
def test_auto_channels_last(cpu_caps, caps, device, precision, expected):
    cpu_caps(caps)
    assert resolve_channels_last("auto", device, precision) is expected
    assert resolve_channels_last(True, device, precision) is True
    assert resolve_channels_last(False, device, precision) is False


@pytest.mark.parametrize(
    "caps, precision, channels_last, dtype",
    [
        (AVX2_ONLY, "32", True, torch.float32),
        (NO_AVX2, "32", False, torch.float32),
        (AVX512_BF16, "bf16", True, torch.bfloat16),
        (AMX, "bf16", True, torch.bfloat16),
    ],
)
def test_fit_runs_and_records_the_auto_choice(
    cpu_caps, data, caps, precision, channels_last, dtype
):
    cpu_caps(caps)
    X, y = data
    clf = RFCNNClassifier(**FAST).fit(X[:6], y[:6])
    assert (clf.precision_, clf.channels_last_) == (precision, channels_last)
    weights = [w for w in clf.net_.module_.parameters() if w.ndim == 4]
    assert (
        all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
        is channels_last
    )
    assert clf.net_.amp_dtype == (None if precision == "32" else torch.bfloat16)
    # the convolutions really ran in that dtype, in training and at inference
    assert _conv_dtypes(clf, X, y) == {True: {dtype}, False: {dtype}}
    # parameters, batch-norm statistics and the outputs stay float32
    module = clf.net_.module_
    assert {p.dtype for p in module.parameters()} == {torch.float32}
    assert {b.dtype for b in module.buffers() if b.is_floating_point()} == {
        torch.float32
    }
    assert clf.predict_proba(X).dtype == np.float64
    assert np.isfinite(clf.predict_proba(X)).all()


def test_explicit_values_win_over_the_hardware(cpu_caps, data):
    X, y = data
    cpu_caps(AMX)
    clf = RFCNNClassifier(**FAST, precision="32", channels_last=False).fit(X, y)
    assert (clf.precision_, clf.channels_last_) == ("32", False)
    assert _conv_dtypes(clf, X, y) == {True: {torch.float32}, False: {torch.float32}}
    cpu_caps(AVX2_ONLY)  # emulated bf16, but asked for: it runs in bf16
    clf = RFCNNClassifier(**FAST, precision="bf16").fit(X, y)
    assert clf.precision_ == "bf16"
    assert _conv_dtypes(clf, X, y) == {
        True: {torch.bfloat16},
        False: {torch.bfloat16},
    }


def test_verbose_output_says_once_what_was_chosen(cpu_caps, data, capsys):
    X, y = data
    cpu_caps(AVX512_BF16)
    RFCNNClassifier(**{**FAST, "verbose": 1, "max_epochs": 2}).fit(X, y)
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("RFCNNClassifier: cpu, bf16 autocast")
    assert "native bf16: avx512_bf16" in first and "channels-last" in first
    assert "precision=auto and channels_last=auto" in first
    assert out.count("RFCNNClassifier: cpu") == 1
    cpu_caps(AVX512_BF16)
    RFCNNEmbedder(**{**FAST, "verbose": 1}, precision="32").fit(X, y)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("RFCNNEmbedder: cpu, float32, channels-last")
    assert "chosen by channels_last=auto" in first and "precision=auto" not in first


def test_verbose_output_names_the_resolved_device(cpu_caps, data, capsys, monkeypatch):
    X, y = data
    cpu_caps(AVX2_ONLY)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    RFCNNClassifier(**{**FAST, "device": "auto", "verbose": 1}).fit(X, y)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("RFCNNClassifier: cpu, float32 (no native bf16")


def test_loaded_model_decides_for_the_machine_it_is_loaded_on(cpu_caps, data, tmp_path):
    X, y = data
    cpu_caps(AMX)
    clf = RFCNNClassifier(**FAST).fit(X, y)
    assert clf.precision_ == "bf16"
    clf.save(tmp_path / "m")
    cpu_caps(AVX2_ONLY)
    loaded = RFCNNClassifier.load(tmp_path / "m")
    assert loaded.precision_ == "32" and loaded.net_.amp_dtype is None
    # a float32 run of a network trained in bf16 predicts nearly the same
    np.testing.assert_allclose(
        loaded.predict_proba(X), clf.predict_proba(X), rtol=0, atol=2e-2
    )


# --------------------------------------------------------------------------
# CUDA (skipped without a GPU; run on a GPU machine with ``pytest -m gpu``)
# --------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize(
    "precision, dtype",
    [("bf16", torch.bfloat16), ("16", torch.float16), ("32", torch.float32)],
)
@pytest.mark.parametrize("channels_last", [True, False])
def test_cuda_fit_predict_in_each_precision(data, precision, dtype, channels_last):
    X, y = data
    clf = RFCNNClassifier(
        **{**FAST, "device": "cuda"}, precision=precision, channels_last=channels_last
    ).fit(X, y)
    assert str(clf.net_.device).startswith("cuda")
    assert (clf.precision_, clf.channels_last_) == (precision, channels_last)
    # float16 trains with a gradient scaler, the other precisions without
    assert (clf.net_.grad_scaler_ is not None) == (precision == "16")
    # batches are pinned for asynchronous host-to-device copies
    assert clf.net_.iterator_train__pin_memory is True
    assert _conv_dtypes(clf, X, y) == {True: {dtype}, False: {dtype}}
    weights = [w for w in clf.net_.module_.parameters() if w.ndim == 4]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights) == (
        channels_last
    )
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64 and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.gpu
def test_cuda_auto_choice(data):
    X, y = data
    clf = RFCNNClassifier(**{**FAST, "device": "auto"}).fit(X, y)
    expected = "bf16" if torch.cuda.is_bf16_supported() else "16"
    assert (clf.precision_, clf.channels_last_) == (expected, True)
    # the embedder of the same network on the GPU gives finite features
    emb = RFCNNEmbedder.from_classifier(clf)
    assert emb.precision_ == expected and np.isfinite(emb.transform(X)).all()


def test_proc_cpuinfo_flags_reads_this_machine_as_torch_does():
    from sklearn_rfcnn.utils._torch import _CPUINFO_CAPABILITIES, proc_cpuinfo_flags

    flags = proc_cpuinfo_flags()
    if not flags or not hasattr(torch.cpu, "get_capabilities"):
        pytest.skip("needs /proc/cpuinfo and torch.cpu.get_capabilities")
    caps = torch.cpu.get_capabilities()
    for flag, name in _CPUINFO_CAPABILITIES.items():
        assert (flag in flags) is bool(caps.get(name, False)), name
    assert proc_cpuinfo_flags("/no/such/file") == set()
