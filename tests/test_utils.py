"""The shared input checks in :mod:`sklearn_rfcnn.utils`."""

import importlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from _helpers import assert_imports_none_of

from sklearn_rfcnn.exceptions import InputTypeError, ParameterError
from sklearn_rfcnn.utils._arith_checks import check_bool, check_int
from sklearn_rfcnn.utils._checks import (
    _is_ragged,
    _reject_strings,
    first_string,
    is_sequence_of_arrays,
    is_stringlike,
)


# --------------------------------------------------------------------------- #
# integer / bool checks (arithmetic and network layers)
# --------------------------------------------------------------------------- #
def test_check_int_accepts_python_and_numpy_integers():
    assert check_int("n", 3) == 3
    value = check_int("n", np.int64(3), minimum=0, maximum=3)
    assert value == 3 and type(value) is int


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (2.0, {}, "n=2.0 must be an integer, got float."),
        (True, {}, "n=True must be an integer, got bool."),
        ("3", {}, "n='3' must be an integer, got str."),
        (0, {"minimum": 1}, "n=0 is out of range: it must lie in [1, inf]."),
        (9, {"maximum": 8}, "n=9 is out of range: it must lie in [-inf, 8]."),
        (
            23,
            {"minimum": 0, "maximum": 22, "hint": " Try 5."},
            "n=23 is out of range: it must lie in [0, 22]. Try 5.",
        ),
    ],
)
def test_check_int_messages(value, kwargs, message):
    with pytest.raises(ParameterError) as info:
        check_int("n", value, **kwargs)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_check_bool():
    assert check_bool("flag", False) is False
    assert check_bool("flag", np.bool_(True)) is True
    for bad in (1, 0, "yes", None):
        with pytest.raises(ParameterError, match=r"must be True or False\.$"):
            check_bool("flag", bad)


def test_arith_checks_import_nothing_heavy():
    assert_imports_none_of(
        "import sklearn_rfcnn.utils._arith_checks as c; "
        "c.check_int('n', 1); c.check_bool('b', True)",
        ("numpy", "torch", "sklearn"),
    )


def test_one_integer_checker_for_every_layer():
    from sklearn_rfcnn.models import CPResNet, _cp_resnet, _layers

    receptive_field = importlib.import_module("sklearn_rfcnn.receptive_field")
    assert receptive_field._check_int is check_int
    assert _cp_resnet.check_bool is check_bool
    # the networks' check gives the same message as the arithmetic layer's
    with pytest.raises(ParameterError) as ours:
        _layers.check_model_int("width", 0)
    with pytest.raises(ParameterError) as shared:
        check_int("width", 0, minimum=1)
    assert str(ours.value) == str(shared.value)
    with pytest.raises(ParameterError, match=r"^width=0 is out of range"):
        CPResNet(width=0)
    with pytest.raises(ParameterError, match=r"^shake_shake=1 must be True or False"):
        CPResNet(shake_shake=1)


# --------------------------------------------------------------------------- #
# string and sequence checks (front end and estimators)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("X", "first"),
    [
        ("a.wav", "a.wav"),
        (["a.wav", "b.wav"], "a.wav"),
        ((Path("a.wav"),), Path("a.wav")),
        (np.array(["a.wav"]), "a.wav"),
        (np.array([b"a.wav"]), b"a.wav"),
        (np.array(["a.wav", 1], dtype=object), "a.wav"),
        (np.array([Path("a.wav")], dtype=object), Path("a.wav")),
        (np.array([], dtype="U1"), ""),
    ],
)
def test_first_string_finds_paths(X, first):
    assert first_string(X) == first
    assert is_stringlike(first)


@pytest.mark.parametrize(
    "X",
    [np.zeros((2, 3)), [np.zeros(3)], [[0.0, 1.0]], np.array([1, "a"], dtype=object)],
)
def test_first_string_ignores_numbers(X):
    assert first_string(X) is None
    _reject_strings(X, "Est")  # no error


def test_reject_strings_messages():
    with pytest.raises(InputTypeError) as info:
        _reject_strings([Path("x/a.wav")], "RFCNNClassifier")
    assert str(info.value) == (
        "RFCNNClassifier expects spectrogram arrays, but X holds strings (e.g. "
        "'x/a.wav'). To classify audio files, put AudioLoader and MelSpectrogram "
        "in front of it in a Pipeline."
    )
    assert isinstance(info.value, TypeError)
    with pytest.raises(InputTypeError, match=r"^Mel got 'a\.wav' \{literal\}$"):
        _reject_strings(["a.wav"], "Mel", message="{name} got {first!r} {{literal}}")


def test_sequence_tests_differ_on_equal_lengths():
    same = [np.zeros((2, 3)), np.zeros((2, 3))]
    ragged = [np.zeros((2, 3)), np.zeros((2, 5))]
    # the front end keeps any list of arrays as a list ...
    assert is_sequence_of_arrays(same) and is_sequence_of_arrays(ragged)
    assert not is_sequence_of_arrays([[0.0, 1.0], [2.0, 3.0]])
    assert not is_sequence_of_arrays([])
    # ... the estimators stack equal shapes and keep only ragged input as a list
    assert not _is_ragged(same) and _is_ragged(ragged)
    assert _is_ragged(tuple(ragged))
    objects = np.empty(2, dtype=object)
    objects[:] = ragged
    assert _is_ragged(objects)
    assert not _is_ragged(np.zeros((2, 3)))
    assert not _is_ragged([])
    assert not _is_ragged([np.zeros(3), [0.0] * 5])


def test_front_end_uses_the_shared_string_check(monkeypatch):
    from sklearn_rfcnn.transformers import BandStandardizer, MelSpectrogram, _validation

    calls = []
    real = _validation._reject_strings

    def spy(X, name, **kwargs):
        calls.append(name)
        return real(X, name, **kwargs)

    monkeypatch.setattr(_validation, "_reject_strings", spy)
    for est in (MelSpectrogram(), BandStandardizer()):
        with pytest.raises(InputTypeError, match="holds strings"):
            est.fit(["a.wav", "b.wav"])
    assert calls == ["MelSpectrogram", "BandStandardizer"]


# --------------------------------------------------------------------------- #
# check_params: the pre-flight of a composite estimator
# --------------------------------------------------------------------------- #
def test_check_params_fails_on_a_pipeline_before_its_front_end_runs():
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from sklearn_rfcnn import (
        AudioLoader,
        BandStandardizer,
        MelSpectrogram,
        RFCNNClassifier,
        check_params,
    )
    from sklearn_rfcnn.utils._sklearn_compat import InvalidParameterError

    calls = []
    spy = FunctionTransformer(lambda X: calls.append(X) or X)
    pipe = Pipeline(
        [
            ("spy", spy),
            ("load", AudioLoader()),
            ("mel", MelSpectrogram()),
            ("norm", BandStandardizer()),
            ("clf", RFCNNClassifier(rho=40)),
        ]
    )
    with pytest.raises(
        ParameterError, match=r"^step 'clf' \(RFCNNClassifier\): rho=40"
    ):
        check_params(pipe)
    # the combination: rho within range for depth 26, beyond it for depth 8
    pipe.set_params(clf__rho=5, clf__depth=8)
    with pytest.raises(ParameterError, match="rho=5 is out of range"):
        check_params(pipe)
    pipe.set_params(clf__rho=4)
    assert check_params(pipe) is pipe
    # declared constraints stay scikit-learn's InvalidParameterError too
    pipe.set_params(mel__n_mels=0)
    with pytest.raises(InvalidParameterError, match=r"^step 'mel' "):
        check_params(pipe)
    # nested steps are named by their set_params path
    union = FeatureUnion([("a", StandardScaler()), ("b", pipe)])
    with pytest.raises(ParameterError, match=r"^step 'b__mel' "):
        check_params(union)
    columns = ColumnTransformer([("c", pipe, [0])])
    with pytest.raises(ParameterError, match=r"^step 'c__mel' "):
        check_params(columns)
    assert calls == []  # nothing was run
    # without the pre-flight, the front end runs before the estimator fails
    pipe.set_params(mel__n_mels=16, clf__rho=40, load__sr=8000, mel__sr=8000)
    waves = [np.random.RandomState(0).randn(4000).astype(np.float32)] * 2
    with pytest.raises(ParameterError, match="rho=40"):
        pipe.fit(waves, [0, 1])
    assert len(calls) == 1


def test_check_params_leaves_a_searchs_estimator_to_the_search():
    from sklearn.model_selection import GridSearchCV

    from sklearn_rfcnn import RFCNNClassifier, check_params

    # rho=7 is beyond depth 8, but the grid sets rho
    grid = GridSearchCV(RFCNNClassifier(rho=7, depth=8), {"rho": [1, 2]})
    assert check_params(grid) is grid
    with pytest.raises(ParameterError, match="rho=7 is out of range"):
        check_params(grid.estimator)


# --------------------------------------------------------------------------- #
# freed memory kept for reuse during the library's CPU passes (glibc)
# --------------------------------------------------------------------------- #
class _RecordingLibc:
    """Stands in for glibc: records ``mallopt`` / ``malloc_trim`` calls."""

    def __init__(self, free_bytes=0):
        self.calls = []
        self.free_bytes = free_bytes

    def mallinfo2(self):
        from types import SimpleNamespace

        return SimpleNamespace(fordblks=self.free_bytes)

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def recording_libc(monkeypatch):
    from sklearn_rfcnn.utils import _malloc

    libc = _RecordingLibc()
    monkeypatch.setattr(_malloc, "_glibc", lambda: libc)
    for name in (*_malloc._MALLOC_VARS, "GLIBC_TUNABLES", "LD_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(_malloc.KEEP_FREED_MEMORY_ENV, raising=False)
    # no release left pending by an earlier test; trims at once unless a test
    # sets a delay
    monkeypatch.setattr(_malloc, "_release", False)
    monkeypatch.setattr(_malloc, "_timer", None)
    monkeypatch.setattr(_malloc, "RELEASE_DELAY_S", 0.0)
    return libc


def _wait_for(predicate, timeout=10.0):
    import time

    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.01)
    return predicate()


def test_keep_freed_memory_sets_once_for_nested_blocks_and_restores(recording_libc):
    from sklearn_rfcnn.utils._malloc import keep_freed_memory

    recording_libc.free_bytes = 65 * 2**20  # more than 64 MiB free: trimmed
    with keep_freed_memory():
        assert recording_libc.calls == [
            ("mallopt", -4, 0),  # M_MMAP_MAX: no mmap for large blocks
            ("mallopt", -1, 2**31 - 1),  # M_TRIM_THRESHOLD: keep freed memory
        ]
        with keep_freed_memory():
            pass
        assert len(recording_libc.calls) == 2  # the inner block changed nothing
    assert recording_libc.calls[2:] == [
        ("mallopt", -4, 65536),  # mmap allowed again,
        ("mallopt", -3, 32 * 2**20),  # above 32 MiB,
        ("mallopt", -1, 64 * 2**20),  # and the top trimmed above 64 MiB
        ("malloc_trim", 0),
    ]


def test_keep_freed_memory_restores_when_the_block_raises(recording_libc):
    from sklearn_rfcnn.utils._malloc import keep_freed_memory

    recording_libc.free_bytes = 2**20  # little free memory: kept, not trimmed
    with pytest.raises(RuntimeError, match="boom"), keep_freed_memory():
        raise RuntimeError("boom")
    assert recording_libc.calls[-1] == ("mallopt", -1, 64 * 2**20)
    with keep_freed_memory():  # the depth went back to 0: set again
        pass
    assert len(recording_libc.calls) == 10
    assert ("malloc_trim", 0) not in recording_libc.calls


def test_keep_freed_memory_releases_only_when_a_block_asked(recording_libc):
    from sklearn_rfcnn.utils._malloc import keep_freed_memory

    recording_libc.free_bytes = 2**30
    with keep_freed_memory(release=False):  # an inference pass: kept
        pass
    assert ("malloc_trim", 0) not in recording_libc.calls
    with keep_freed_memory(release=False), keep_freed_memory(release=True):
        pass  # a training call inside: released when the outer block ends
    assert recording_libc.calls[-1] == ("malloc_trim", 0)
    assert recording_libc.calls.count(("malloc_trim", 0)) == 1


def test_keep_freed_memory_releases_once_the_process_is_idle(
    recording_libc, monkeypatch
):
    import time

    from sklearn_rfcnn.utils import _malloc

    monkeypatch.setattr(_malloc, "RELEASE_DELAY_S", 0.2)
    recording_libc.free_bytes = 2**30
    trim = ("malloc_trim", 0)
    with _malloc.keep_freed_memory():
        pass
    assert trim not in recording_libc.calls  # not when the block ends,
    assert _wait_for(lambda: trim in recording_libc.calls)  # but once idle
    time.sleep(0.3)
    assert recording_libc.calls.count(trim) == 1
    assert recording_libc.calls[-1] == trim


def test_a_block_within_the_delay_postpones_the_release(recording_libc, monkeypatch):
    import time

    from sklearn_rfcnn.utils import _malloc

    monkeypatch.setattr(_malloc, "RELEASE_DELAY_S", 0.2)
    recording_libc.free_bytes = 2**30
    trim = ("malloc_trim", 0)
    with _malloc.keep_freed_memory(release=True):  # training
        pass
    with _malloc.keep_freed_memory(release=False):  # a predict right after it
        time.sleep(0.5)  # longer than the delay: no release while it runs
        assert trim not in recording_libc.calls
    assert trim not in recording_libc.calls
    # the release the training asked for still comes, after the predict
    assert _wait_for(lambda: trim in recording_libc.calls)
    assert recording_libc.calls.count(trim) == 1


def test_release_freed_memory_carries_out_a_pending_release_now(
    recording_libc, monkeypatch
):
    import time

    from sklearn_rfcnn.utils import _malloc

    monkeypatch.setattr(_malloc, "RELEASE_DELAY_S", 0.2)
    recording_libc.free_bytes = 2**30
    trim = ("malloc_trim", 0)
    assert _malloc.release_freed_memory() is False  # nothing pending
    with _malloc.keep_freed_memory(release=False):
        pass
    assert _malloc.release_freed_memory() is False  # inference asked for none
    with _malloc.keep_freed_memory():
        assert _malloc.release_freed_memory() is False  # not while a block runs
    assert _malloc.release_freed_memory() is True
    assert recording_libc.calls.count(trim) == 1
    time.sleep(0.4)  # the timer it replaced does not trim a second time
    assert recording_libc.calls.count(trim) == 1
    assert _malloc.release_freed_memory() is False


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_keep_freed_memory_works_in_a_child_forked_while_the_lock_was_held():
    import time

    from sklearn_rfcnn.utils import _malloc

    if _malloc.malloc_tunable() is not None:
        pytest.skip(f"the allocator is left alone here: {_malloc.malloc_tunable()}")
    import threading

    # a thread holds the lock when the process forks, as the release timer
    # does for a moment: the child inherits the lock held, not the thread
    held, done = threading.Event(), threading.Event()

    def hold_the_lock():
        with _malloc._lock:
            held.set()
            done.wait(30)

    holder = threading.Thread(target=hold_the_lock, daemon=True)
    holder.start()
    assert held.wait(10)
    pid = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork + threads
            pid = os.fork()
    finally:
        if pid != 0:
            done.set()
            holder.join(10)
    if pid == 0:  # the child: must not wait for a lock nobody will release
        try:
            with _malloc.keep_freed_memory():
                pass
            code = 0
        except BaseException:
            code = 1
        os._exit(code)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on keep_freed_memory's lock")
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"RFCNN_KEEP_FREED_MEMORY": "0"}, "RFCNN_KEEP_FREED_MEMORY=0"),
        ({"MALLOC_MMAP_MAX_": "65536"}, "malloc tuned by MALLOC_MMAP_MAX_"),
        ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}, "malloc tuned by"),
        ({"LD_PRELOAD": "/usr/lib/libtcmalloc.so.4"}, "another allocator"),
    ],
)
def test_keep_freed_memory_leaves_a_tuned_allocator_alone(
    recording_libc, monkeypatch, env, reason
):
    from sklearn_rfcnn.utils._malloc import keep_freed_memory, malloc_tunable

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert reason in malloc_tunable()
    with keep_freed_memory():
        pass
    assert recording_libc.calls == []


def test_keep_freed_memory_is_a_no_op_without_glibc_or_when_disabled(
    recording_libc, monkeypatch
):
    from sklearn_rfcnn.utils import _malloc

    with _malloc.keep_freed_memory(enabled=False):
        pass
    assert recording_libc.calls == []
    monkeypatch.setattr(_malloc, "_glibc", lambda: None)
    assert _malloc.malloc_tunable({}) == "not glibc"

    def no_such_name(name):  # what macOS answers
        raise ValueError(f"unrecognized configuration name: {name}")

    monkeypatch.setattr(_malloc.os, "confstr", no_such_name)
    assert not _malloc._is_glibc()
    with _malloc.keep_freed_memory():
        pass
    assert recording_libc.calls == []


def _minor_faults_of_two_large_buffers():
    import resource

    import torch

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(2):
        buffer = torch.ones(24 * 2**20)  # 96 MiB, every page touched
        del buffer
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_keep_freed_memory_saves_the_page_faults_of_a_reallocated_buffer():
    from sklearn_rfcnn.utils._malloc import keep_freed_memory, malloc_tunable

    if malloc_tunable() is not None:
        pytest.skip(f"the allocator is left alone here: {malloc_tunable()}")
    import torch

    outside = _minor_faults_of_two_large_buffers()
    with keep_freed_memory():
        warm = torch.ones(64 * 2**20)  # 256 MiB of heap, mapped once
        del warm
        inside = _minor_faults_of_two_large_buffers()
    # 96 MiB is ~24,000 pages of 4 KiB, faulted twice outside; reused inside
    assert outside > 20_000
    assert inside < outside / 10


# --------------------------------------------------------------------------
# utils._conv_grad: weight gradients of channels-last convolutions in NCHW
# --------------------------------------------------------------------------


def _conv_grads(conv, x, grad, mode=None):
    """Output, grad_fn's name and the gradients of ``conv(x)`` against ``grad``."""
    import contextlib

    import torch

    with mode if mode is not None else contextlib.nullcontext():
        out = conv(x)
    wrt = [t for t in (x, conv.weight, conv.bias) if t is not None and t.requires_grad]
    return out, type(out.grad_fn).__name__, torch.autograd.grad(out, wrt, grad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stride": 2, "padding": (1, 2)},
        {"dilation": 2, "padding": 2, "groups": 4},
        {"bias": True, "padding": 1},
    ],
)
@pytest.mark.parametrize("input_grad", [True, False])
def test_nchw_weight_grads_give_the_convolutions_gradients(kwargs, input_grad):
    import torch

    from sklearn_rfcnn.utils._conv_grad import nchw_weight_grads

    torch.manual_seed(0)
    kwargs = dict(kwargs)
    conv = torch.nn.Conv2d(64, 32, 3, bias=kwargs.pop("bias", False), **kwargs)
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.randn(2, 64, 33, 35).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(input_grad)
    with torch.no_grad():
        grad = torch.randn_like(conv(x))
    out, name, expected = _conv_grads(conv, x, grad)
    assert name == "ConvolutionBackward0"
    out2, name2, got = _conv_grads(conv, x, grad, nchw_weight_grads(conv))
    assert name2 == "_Conv2dNCHWWeightGradBackward"  # it was re-routed
    torch.testing.assert_close(out2, out, rtol=0, atol=0)  # the same forward
    assert len(got) == len(expected) == 1 + input_grad + (conv.bias is not None)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)
    if input_grad:  # the input gradient stays in channels-last
        assert got[0].is_contiguous(memory_format=torch.channels_last)


def test_nchw_weight_grads_leave_other_convolutions_alone():
    import torch

    from sklearn_rfcnn.utils._conv_grad import nchw_weight_grads

    cl = torch.channels_last
    wide = torch.nn.Conv2d(64, 8, 3).to(memory_format=cl)
    narrow = torch.nn.Conv2d(16, 8, 3).to(memory_format=cl)
    same = torch.nn.Conv2d(64, 8, 3, padding="same").to(memory_format=cl)
    reflect = torch.nn.Conv2d(64, 8, 3, padding=1, padding_mode="reflect")

    class OwnConv(torch.nn.Conv2d):  # computes the convolution itself
        def forward(self, x):
            return super().forward(x) * 2

    own = OwnConv(64, 8, 3).to(memory_format=cl)
    x64 = torch.randn(2, 64, 32, 32)
    x16 = torch.randn(2, 16, 32, 32)
    x64_cl = x64.contiguous(memory_format=cl)
    cases = {
        "NCHW input": (wide, x64),
        "small map": (wide, torch.randn(2, 64, 31, 32).contiguous(memory_format=cl)),
        "too few channels": (narrow, x16.contiguous(memory_format=cl)),
        "bf16 autocast": (wide, x64_cl),
        "no autograd": (wide, x64_cl),
        "string padding": (same, x64_cl),
        "reflect padding": (reflect.to(memory_format=cl), x64_cl),
        "own forward": (own, x64_cl),
    }

    def run(case, net, x):
        if case == "bf16 autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x)
        if case == "no autograd":
            with torch.no_grad():
                return net(x)
        return net(x)

    for case, (conv, x) in cases.items():
        net = torch.nn.Sequential(conv)
        with nchw_weight_grads(net):
            out = run(case, net, x)
        name = type(out.grad_fn).__name__ if out.grad_fn is not None else None
        assert name != "_Conv2dNCHWWeightGradBackward", case
        # the same values as outside the block
        torch.testing.assert_close(out, run(case, net, x), rtol=0, atol=0)
    # the narrow one and the small map are re-routed with lower thresholds
    with nchw_weight_grads(narrow, min_in_channels=16):
        out = narrow(x16.contiguous(memory_format=cl))
    assert type(out.grad_fn).__name__ == "_Conv2dNCHWWeightGradBackward"
    with nchw_weight_grads(wide, min_pixels=31 * 32):
        out = wide(torch.randn(2, 64, 31, 32).contiguous(memory_format=cl))
    assert type(out.grad_fn).__name__ == "_Conv2dNCHWWeightGradBackward"


def test_nchw_weight_grads_leaves_the_network_as_it_was():
    """Forward hooks still run inside the block; on exit (also by an
    exception) no layer keeps the instance forward, and a pickle has none."""
    import pickle

    import torch

    from sklearn_rfcnn.utils._conv_grad import nchw_weight_grads

    cl = torch.channels_last
    net = torch.nn.Sequential(torch.nn.Conv2d(64, 64, 3), torch.nn.Conv2d(64, 8, 3))
    net = net.to(memory_format=cl)
    seen = []
    hook = net[1].register_forward_hook(lambda m, args, out: seen.append(out.shape))
    x = torch.randn(2, 64, 36, 36).contiguous(memory_format=cl)
    with nchw_weight_grads(net):
        assert all("forward" in vars(conv) for conv in net)
        out = net(x)
    assert seen == [out.shape]
    assert type(out.grad_fn).__name__ == "_Conv2dNCHWWeightGradBackward"
    assert not any("forward" in vars(conv) for conv in net)
    with pytest.raises(RuntimeError, match="boom"), nchw_weight_grads(net):
        raise RuntimeError("boom")
    assert not any("forward" in vars(conv) for conv in net)
    hook.remove()  # (a lambda does not pickle)
    assert not any("forward" in vars(c) for c in pickle.loads(pickle.dumps(net)))
    assert type(net(x).grad_fn).__name__ == "ConvolutionBackward0"


def test_has_wide_convs_finds_a_nested_convolution():
    import torch

    from sklearn_rfcnn.models import create_model
    from sklearn_rfcnn.utils._conv_grad import MIN_IN_CHANNELS, has_wide_convs

    assert MIN_IN_CHANNELS == 64
    assert has_wide_convs(create_model("cp_resnet", rho=2, width=16, n_classes=3))
    assert not has_wide_convs(create_model("cp_resnet", rho=2, width=8, n_classes=3))
    nested = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Conv2d(64, 1, 1)))
    assert has_wide_convs(nested) and not has_wide_convs(nested, min_in_channels=65)


@pytest.mark.parametrize(
    "caps, isa, device, precision, channels_last, expected",
    [
        ({"avx2": True, "avx512_f": False}, "", "cpu", "32", True, True),
        ({"avx2": True, "avx512_f": True}, "AVX2", "cpu", "32", True, True),
        ({"avx2": True, "avx512_f": True}, "", "cpu", "32", True, False),
        ({"avx2": True, "avx512_f": False}, "", "cpu", "32", False, False),
        ({"avx2": True, "avx512_f": False}, "", "cpu", "bf16", True, False),
        ({"avx2": False, "avx512_f": False}, "", "cpu", "32", True, False),
        ({"avx2": True, "avx512_f": True}, "AVX", "cpu", "32", True, False),
        ({"avx2": True, "avx512_f": False}, "", "cuda", "32", True, False),
    ],
)
def test_nchw_weight_grads_pay_only_on_an_avx2_onednn_in_float32(
    monkeypatch, caps, isa, device, precision, channels_last, expected
):
    import torch

    from sklearn_rfcnn.utils._conv_grad import nchw_weight_grads_pay

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: dict(caps))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    assert nchw_weight_grads_pay(device, precision, channels_last) is expected
