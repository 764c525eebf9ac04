"""Inspecting fitted audio pipelines: the receptive field in seconds and Hz.

This module sits above the front end and the estimators (it imports both), so
it recognises their steps with ``isinstance``; the unit arithmetic itself
lives in the pure :mod:`sklearn_rfcnn.receptive_field`, which re-exports
:func:`describe_pipeline` for backward compatibility.

Examples
--------
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn_rfcnn import BandStandardizer, MelSpectrogram, RFCNNClassifier
>>> from sklearn_rfcnn.inspection import describe_pipeline
>>> pipe = make_pipeline(MelSpectrogram(), BandStandardizer(), RFCNNClassifier())
>>> describe_pipeline(pipe)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
sklearn.exceptions.NotFittedError: the CNN step 'rfcnnclassifier' is not fitted...
"""

from sklearn.exceptions import NotFittedError

from sklearn_rfcnn.estimators import RFCNNClassifier, RFCNNEmbedder
from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.receptive_field import RFDescription, describe_receptive_field
from sklearn_rfcnn.transformers import MelSpectrogram

__all__ = ["describe_pipeline"]

_MEL_PARAMS = ("sr", "hop_length", "n_mels")


def _params(step):
    get = getattr(step, "get_params", None)
    params = dict(get(deep=False)) if callable(get) else {}
    for name in (*_MEL_PARAMS, "fmin", "fmax"):
        if name not in params and hasattr(step, name):
            params[name] = getattr(step, name)
    return params


def _is_mel_step(step):
    # The library's own step, or any step exposing the spectrogram parameters
    # (a user's own mel transformer with the same parameter names).
    if isinstance(step, MelSpectrogram):
        return True
    params = _params(step)
    return all(name in params for name in _MEL_PARAMS)


def _is_cnn_step(step):
    # The library's estimators, or any estimator with a rho parameter.
    if isinstance(step, (RFCNNClassifier, RFCNNEmbedder)):
        return True
    get = getattr(step, "get_params", None)
    return callable(get) and "rho" in get(deep=False)


def describe_pipeline(pipe) -> RFDescription:
    """Describe the RF of a fitted audio Pipeline in seconds and Hz.

    Reads ``sr``, ``hop_length``, ``n_mels``, ``fmin`` and ``fmax`` from the
    pipeline's :class:`~sklearn_rfcnn.MelSpectrogram` step (or from any step
    with those parameters) and the RF in pixels from the fitted CNN step's
    ``receptive_field_``, then calls
    :func:`~sklearn_rfcnn.receptive_field.describe_receptive_field`.

    Parameters
    ----------
    pipe : sklearn.pipeline.Pipeline or object with ``steps``
        ``[(name, step), ...]`` holding a mel-spectrogram step followed by a
        fitted RF-CNN estimator (:class:`~sklearn_rfcnn.RFCNNClassifier` or
        :class:`~sklearn_rfcnn.RFCNNEmbedder`).

    Returns
    -------
    description : RFDescription
        The RF in pixels, frames, seconds, mel bins and Hz, with a readable
        ``str()``.

    Raises
    ------
    ParameterError
        If there is no mel-spectrogram step, no CNN step, or the CNN comes
        before the spectrogram.
    sklearn.exceptions.NotFittedError
        If the CNN step has no ``receptive_field_`` yet (fit the pipeline).

    See Also
    --------
    sklearn_rfcnn.receptive_field.describe_receptive_field : The same from
        an RF in pixels and explicit spectrogram parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_rfcnn import MelSpectrogram, RFCNNClassifier
    >>> waves = np.random.default_rng(0).normal(size=(8, 16000)).astype("float32")
    >>> clf = RFCNNClassifier(width=4, rho=2, max_epochs=1, verbose=0, random_state=0)
    >>> pipe = make_pipeline(
    ...     MelSpectrogram(sr=16000, n_fft=512, hop_length=160, n_mels=32), clf
    ... ).fit(waves, [0, 1] * 4)
    >>> d = describe_pipeline(pipe)
    >>> d.rf, d.time_frames, round(d.time_seconds, 3)
    (RF(freq=39, time=39), 39, 0.39)
    """
    steps = getattr(pipe, "steps", None)
    if steps is None:
        raise ParameterError(
            f"pipe={type(pipe).__name__} has no 'steps'; pass a fitted "
            "sklearn.pipeline.Pipeline (MelSpectrogram -> ... -> RFCNN estimator)."
        )
    mel_idx = mel = None
    cnn_idx = cnn = None
    unfitted = None
    for i, (name, step) in enumerate(steps):
        if step is None or isinstance(step, str):
            continue
        if mel is None and _is_mel_step(step):
            mel_idx, mel = i, step
        elif getattr(step, "receptive_field_", None) is not None:
            cnn_idx, cnn = i, step
        elif unfitted is None and _is_cnn_step(step):
            unfitted = name
    if mel is None:
        raise ParameterError(
            "describe_pipeline found no MelSpectrogram step (a step with sr, "
            "hop_length and n_mels) in the pipeline; without it the RF is known only "
            "in pixels: use describe_receptive_field(rf, sr=..., hop_length=..., "
            "n_mels=...)."
        )
    if cnn is None:
        if unfitted is not None:
            raise NotFittedError(
                f"the CNN step {unfitted!r} is not fitted, so its receptive_field_ "
                "is unknown; call pipe.fit(X, y) first."
            )
        raise ParameterError(
            "describe_pipeline found no CNN step with a receptive_field_ attribute "
            "(an RFCNNClassifier or RFCNNEmbedder) in the pipeline."
        )
    if cnn_idx < mel_idx:
        raise ParameterError(
            "the CNN step comes before the MelSpectrogram step; the pipeline must "
            "compute the spectrogram first."
        )
    p = _params(mel)
    return describe_receptive_field(
        cnn.receptive_field_,
        sr=p["sr"],
        hop_length=p["hop_length"],
        n_mels=p["n_mels"],
        fmin=0.0 if p.get("fmin") is None else p["fmin"],
        fmax=p.get("fmax"),
    )
