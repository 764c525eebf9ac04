"""RFCNNEmbedder: embeddings, feature names, set_output, from_classifier."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import (
    check_global_output_transform_pandas,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
)

from sklearn_rfcnn import RFCNNClassifier, RFCNNEmbedder
from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.utils._testing import FAST_CNN_PARAMS, TINY_PARAMS

FAST = dict(FAST_CNN_PARAMS)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 16)
    X = rng.normal(size=(32, 8, 12)).astype(np.float32)
    X[y == 1, :4] += 2.0
    return X, y


def test_transform_shape_dtype_and_names(data):
    X, y = data
    emb = RFCNNEmbedder(**FAST).fit(X, y)
    Z = emb.transform(X)
    assert Z.shape == (len(X), 4 * FAST["width"]) and Z.dtype == np.float32
    names = emb.get_feature_names_out()
    assert names[0] == "rfcnnembedder0" and len(names) == Z.shape[1]
    np.testing.assert_allclose(emb.fit_transform(X, y), Z)
    # eval mode, no randomness: transform is a pure function of the input
    np.testing.assert_array_equal(emb.transform(X), Z)


def test_transform_variable_length_list(data):
    X, y = data
    emb = RFCNNEmbedder(**FAST).fit(X, y)
    clips = [x[:, : 6 + i % 4] for i, x in enumerate(X)]
    Z = emb.transform(clips)
    assert Z.shape == (len(X), 16)
    np.testing.assert_allclose(Z[3], emb.transform(clips[3][None])[0], rtol=1e-5)


def test_from_classifier_reuses_the_network(data):
    X, y = data
    # float32: compared with a plain float32 forward pass below
    clf = RFCNNClassifier(**FAST, precision="32").fit(X, y)
    emb = RFCNNEmbedder.from_classifier(clf)
    assert emb.net_ is clf.net_
    assert (emb.precision_, emb.channels_last_) == ("32", clf.channels_last_)
    assert emb.get_params() == clf.get_params()
    np.testing.assert_array_equal(emb.classes_, clf.classes_)
    Z = emb.transform(X)
    module = clf.net_.module_
    import torch

    with torch.no_grad():
        fmap = module.forward_features(torch.as_tensor(X[:, None]))
        ref = module.forward_head(fmap, pre_logits=True).numpy()
    np.testing.assert_allclose(Z, ref, rtol=1e-5, atol=1e-6)
    # clone gives an unfitted embedder with the classifier's configuration
    fresh = clone(emb)
    assert not hasattr(fresh, "net_")
    with pytest.raises(ParameterError, match="RFCNNClassifier"):
        RFCNNEmbedder.from_classifier(SVC())


def _two_class_bands(n, seed):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.normal(size=(n, 8, 12)).astype(np.float32)
    X[y == 1, :4] += 1.5
    return X, y


def test_embedder_then_scaler_then_svc_generalises():
    """The recommended form, scored on clips neither the CNN nor the SVM saw."""
    X, y = _two_class_bands(64, seed=0)
    Xt, yt = _two_class_bands(64, seed=1)
    params = {**FAST, "max_epochs": 15, "mixup_alpha": 0.0, "roll": 0}
    pipe = make_pipeline(RFCNNEmbedder(**params), StandardScaler(), SVC())
    pipe.fit(X, y)
    assert pipe.score(Xt, yt) > 0.85
    assert pipe[:-1].transform(Xt).shape == (len(Xt), 4 * FAST["width"])


def test_multilabel_embedder(data):
    X, y = data
    Y = np.c_[y, 1 - y, y]
    emb = RFCNNEmbedder(**FAST).fit(X, Y)
    assert emb.n_outputs_ == 3 and emb.transform(X).shape == (len(X), 16)


@pytest.mark.parametrize(
    "check",
    [
        check_set_output_transform,
        check_set_output_transform_pandas,
        check_global_output_transform_pandas,
        check_transformer_get_feature_names_out,
        check_transformer_get_feature_names_out_pandas,
    ],
    ids=lambda c: c.__name__,
)
def test_set_output_and_feature_name_checks(check):
    pytest.importorskip("pandas")
    check("RFCNNEmbedder", RFCNNEmbedder(**TINY_PARAMS["RFCNNEmbedder"]))
