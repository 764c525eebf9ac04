"""sklearn_rfcnn.inspection.describe_pipeline on real and duck-typed pipelines."""

import numpy as np
import pytest
from _helpers import assert_imports_none_of
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_rfcnn import BandStandardizer, MelSpectrogram, RFCNNEmbedder
from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.inspection import describe_pipeline
from sklearn_rfcnn.receptive_field import RF, describe_receptive_field
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS

MEL = {"sr": 8000, "n_fft": 256, "hop_length": 64, "n_mels": 16, "fmin": 50.0}


def _waves():
    return np.random.default_rng(0).normal(size=(6, 3200)).astype(np.float32)


def test_real_pipeline_with_an_embedder():
    pipe = make_pipeline(
        MelSpectrogram(**MEL), BandStandardizer(), RFCNNEmbedder(**FAST_CNN_PARAMS)
    ).fit(_waves(), [0, 1] * 3)
    d = describe_pipeline(pipe)
    rf = pipe[-1].receptive_field_
    assert d == describe_receptive_field(
        rf, sr=8000, hop_length=64, n_mels=16, fmin=50.0
    )
    assert d.rf == RF(39, 39)  # rho=2


def test_unfitted_library_cnn_is_not_fitted_error():
    pipe = make_pipeline(MelSpectrogram(**MEL), RFCNNEmbedder(**FAST_CNN_PARAMS))
    with pytest.raises(NotFittedError, match="'rfcnnembedder' is not fitted"):
        describe_pipeline(pipe)


def test_order_and_missing_steps():
    class Fitted:
        receptive_field_ = RF(39, 39)

    class Pipe:
        steps = [("clf", Fitted()), ("mel", MelSpectrogram(**MEL))]

    with pytest.raises(ParameterError, match="comes before"):
        describe_pipeline(Pipe())
    with pytest.raises(ParameterError, match="no CNN step"):
        describe_pipeline(make_pipeline(MelSpectrogram(**MEL), StandardScaler()))


def test_reexported_from_package_and_pointed_to_from_receptive_field():
    import sklearn_rfcnn
    from sklearn_rfcnn import receptive_field

    assert sklearn_rfcnn.describe_pipeline is describe_pipeline
    # the arithmetic layer imports nothing above it: the old path names the new
    with pytest.raises(AttributeError, match=r"sklearn_rfcnn\.inspection"):
        receptive_field.describe_pipeline
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        receptive_field.no_such_name


def test_receptive_field_module_stays_pure_until_asked():
    assert_imports_none_of(
        "from sklearn_rfcnn.receptive_field import *", ("torch", "sklearn")
    )
