"""The shared input checks in :mod:`sklearn_rfcnn.utils`."""

import importlib
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
