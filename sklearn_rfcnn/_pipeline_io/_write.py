"""Writing a fitted pipeline's folder: :func:`save_pipeline`."""

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from sklearn_rfcnn._model_card import (
    CARD_YAML_DOC,
    check_card_info,
    check_metrics,
    pipeline_card,
    write_card,
)
from sklearn_rfcnn._pipeline_io._format import (
    _ESTIMATORS,
    _SKOPS_TRUSTED,
    _TRANSFORMERS,
    ARRAYS_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    PIPELINE_FILE,
    STEPS_DIR,
    _check_fitted,
    _content_checksum,
    _digests,
    _encode_value,
    _import_skops,
    _json_params,
)
from sklearn_rfcnn._version import __version__
from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.inspection import describe_pipeline
from sklearn_rfcnn.utils._atomic import (
    atomic_folder,
)
from sklearn_rfcnn.utils._docstrings import fill_doc

__all__ = ["save_pipeline"]


def _pipeline_settings(pipe):
    """The Pipeline's own parameters (not its steps), checked to be storable."""
    params = pipe.get_params(deep=False)
    memory = params.get("memory")
    if not (memory is None or isinstance(memory, str)):
        raise ParameterError(
            f"Pipeline memory={memory!r} cannot be stored; set memory=None (or a "
            "cache folder path) before save_pipeline."
        )
    settings = {k: v for k, v in params.items() if k != "steps"}
    try:
        json.dumps(settings)
    except TypeError as exc:
        raise ParameterError(
            f"a Pipeline parameter cannot be stored as JSON ({exc})."
        ) from None
    return settings


def _skops_bytes(where, step):
    """A scikit-learn step as skops bytes, refused if it needs untrusted types."""
    _check_fitted(where, step)
    sio = _import_skops(where, type(step).__name__)
    data = sio.dumps(step)
    untrusted = [
        t for t in sio.get_untrusted_types(data=data) if t not in _SKOPS_TRUSTED
    ]
    if untrusted:
        raise ParameterError(
            f"step {where!r} ({type(step).__name__}) holds types that "
            f"cannot be loaded safely without pickle: {untrusted}; replace "
            "the step with a scikit-learn or sklearn-rfcnn one, or save the "
            "pipeline with joblib (pickle) instead."
        )
    return data


def _write(pipe, folder, arrays, prefix):
    """Write ``pipe``'s steps into ``folder``; returns the JSON description."""
    if not isinstance(pipe, Pipeline):
        raise ParameterError(
            f"pipe must be a sklearn.pipeline.Pipeline, got {type(pipe).__name__}; "
            "wrap a single estimator with make_pipeline(...), or use the "
            "estimator's own save(path)."
        )
    settings = _pipeline_settings(pipe)
    steps = []
    for i, (name, step) in enumerate(pipe.steps):
        where = f"{prefix}{name}"
        entry = {"name": name}
        rel = f"{STEPS_DIR}/step{i}"
        if step is None or (isinstance(step, str) and step == "passthrough"):
            entry.update(kind="passthrough", value=step)
        elif type(step) in _TRANSFORMERS.values():
            _check_fitted(where, step)
            params = _json_params(where, step)
            fitted = {
                attr: _encode_value(value, f"{where}.{attr}", arrays)
                for attr, value in vars(step).items()
                if attr not in params
            }
            entry.update(
                kind="transformer",
                cls=type(step).__name__,
                params=params,
                fitted=fitted,
            )
        elif type(step) in _ESTIMATORS.values():
            _check_fitted(where, step)
            step._write_files(folder / rel)
            entry.update(kind="estimator", cls=type(step).__name__, path=rel)
        elif type(step) is Pipeline:
            sub = folder / rel
            sub.mkdir(parents=True)
            entry.update(
                kind="pipeline",
                path=rel,
                pipeline=_write(step, sub, arrays, f"{where}__"),
            )
        elif isinstance(step, BaseEstimator):
            data = _skops_bytes(where, step)
            (folder / STEPS_DIR).mkdir(exist_ok=True)
            (folder / (rel + ".skops")).write_bytes(data)
            entry.update(
                kind="skops",
                cls=f"{type(step).__module__}.{type(step).__qualname__}",
                path=rel + ".skops",
            )
        else:
            raise ParameterError(
                f"step {where!r} is a {type(step).__name__}, not an estimator; "
                "save_pipeline stores scikit-learn and sklearn-rfcnn steps only."
            )
        steps.append(entry)
    return {"settings": settings, "steps": steps}


def _check_target(path, overwrite):
    if path.exists():
        if not path.is_dir():
            raise ParameterError(
                f"path={os.fspath(path)!r} exists and is a file; choose a folder "
                "path for the pipeline."
            )
        if any(path.iterdir()):
            if not (path / PIPELINE_FILE).is_file():
                raise ParameterError(
                    f"path={os.fspath(path)!r} exists and is not a saved pipeline "
                    "folder; choose a new path (save_pipeline never replaces other "
                    "folders)."
                )
            if not overwrite:
                raise ParameterError(
                    f"path={os.fspath(path)!r} already holds a saved pipeline; pass "
                    "overwrite=True to replace it."
                )


def _flat_steps(pipe, prefix=""):
    """``[(name, step)]`` of ``pipe`` with nested Pipelines flattened."""
    out = []
    for name, step in pipe.steps:
        if type(step) is Pipeline:
            out += _flat_steps(step, f"{prefix}{name}__")
        else:
            out.append((f"{prefix}{name}", step))
    return out


def _card(pipe, folder_name, metadata, metrics, license=None, datasets=None):
    """The model card of ``pipe`` (see :mod:`sklearn_rfcnn._model_card`)."""
    flat = _flat_steps(pipe)
    rows, cnn = [], None
    for name, step in flat:
        if step is None or isinstance(step, str):
            rows.append((name, "passthrough", {}))
        elif type(step) in _ESTIMATORS.values():
            rows.append((name, type(step).__name__, None))
            cnn = step
        else:
            rows.append((name, type(step).__name__, step.get_params(deep=False)))
    try:
        description = describe_pipeline(SimpleNamespace(steps=flat))
    except (ParameterError, NotFittedError):  # no spectrogram step, or no CNN
        description = None
    first = next((s for _, s in flat if s is not None and not isinstance(s, str)), None)
    return pipeline_card(
        folder_name,
        rows,
        cnn,
        flat[-1][1] if flat else None,
        description,
        metadata=metadata,
        metrics=metrics,
        first_step=None if first is None else type(first).__name__,
        license=license,
        datasets=datasets,
    )


@fill_doc(card_yaml=CARD_YAML_DOC)
def save_pipeline(
    pipe,
    path,
    *,
    metadata=None,
    overwrite=False,
    metrics=None,
    license=None,
    datasets=None,
):
    """Save a fitted pipeline (front end and estimators) to a folder, without pickle.

    The library's transformers (:class:`~sklearn_rfcnn.AudioLoader`,
    :class:`~sklearn_rfcnn.MelSpectrogram`,
    :class:`~sklearn_rfcnn.BandStandardizer`) are stored as their
    ``get_params()`` and fitted attributes (JSON numbers and ``.npz`` arrays);
    the CNN estimators through their own ``save`` (JSON plus weight tensors);
    nested Pipelines in the same layout; any other scikit-learn step (e.g.
    :class:`~sklearn.preprocessing.StandardScaler`, :class:`~sklearn.svm.SVC`)
    with `skops <https://skops.readthedocs.io>`_ (an optional dependency),
    refusing a step that holds types skops cannot load safely.

    The folder is written under a temporary name beside ``path`` and renamed
    into place, so readers see either the old or the new pipeline.

    Parameters
    ----------
    pipe : sklearn.pipeline.Pipeline
        A fitted pipeline.
    path : str or path-like
        Folder to create.  An existing saved pipeline there is replaced only
        with ``overwrite=True``; any other non-empty folder is never replaced.
    metadata : dict, default=None
        JSON-serialisable information to keep beside the pipeline (e.g. tag
        names); read it back with ``load_pipeline(path, return_metadata=True)``.
    overwrite : bool, default=False
        Replace a pipeline saved at ``path`` before.
    metrics : dict of str to float, default=None
        Held-out scores to record in the model card ``README.md`` (e.g.
        ``{"pr_auc_macro": 0.81}``).  The card also lists the labels in
        output order (``metadata["target_names"]`` names them when it has
        one name per output), each step's parameters, the architecture, the
        receptive field in pixels, seconds and Hz and the training recipe;
        :func:`load_pipeline` never reads it and no checksum covers it.  The
        metrics also go to the ``model-index`` of the card's YAML front
        matter, where the Hub (and ``huggingface_hub.ModelCard``) reads
        evaluation results; the YAML's ``pipeline_tag`` is
        ``audio-classification``, or ``feature-extraction`` when the last
        step only transforms.
    %(card_yaml)s

    Returns
    -------
    path : pathlib.Path
        The folder written: ``pipeline.json``, the steps' arrays and files, and
        the model card.

    Raises
    ------
    ParameterError
        ``pipe`` is not a Pipeline, ``path`` is taken, ``metadata`` or a step
        cannot be stored without pickle (the message names the step), or
        ``metrics`` is not a dict of names to numbers.
    sklearn.exceptions.NotFittedError
        A step is not fitted (the message names it).
    ImportError
        A plain scikit-learn step needs skops, which is not installed.

    See Also
    --------
    load_pipeline : Read the folder back.
    RFCNNClassifier.save : The format of a single estimator.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_rfcnn import (BandStandardizer, MelSpectrogram,
    ...                            RFCNNClassifier, load_pipeline, save_pipeline)
    >>> waves = np.random.default_rng(0).normal(size=(8, 4000)).astype("float32")
    >>> pipe = make_pipeline(
    ...     MelSpectrogram(sr=8000, n_fft=256, hop_length=64, n_mels=16),
    ...     BandStandardizer(),
    ...     RFCNNClassifier(width=4, rho=2, max_epochs=1, verbose=0, device="cpu",
    ...                     random_state=0),
    ... ).fit(waves, [0, 1] * 4)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = save_pipeline(pipe, os.path.join(tmp, "model"),
    ...                            metadata={"note": "demo"})
    ...     loaded, meta = load_pipeline(folder, return_metadata=True)
    >>> meta
    {'note': 'demo'}
    >>> np.array_equal(loaded.predict_proba(waves), pipe.predict_proba(waves))
    True
    """
    path = Path(os.fspath(path)).expanduser()
    try:
        metadata = json.loads(json.dumps({} if metadata is None else dict(metadata)))
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"metadata must be a JSON-serialisable dict ({exc})."
        ) from None
    metrics = check_metrics(metrics)
    check_card_info(license, datasets)  # fail before anything is written
    _check_target(path, overwrite)

    def write():
        with atomic_folder(path, check=lambda p: _check_target(p, overwrite)) as tmp:
            arrays = {}
            description = _write(pipe, tmp, arrays, "")
            if arrays:
                with open(tmp / ARRAYS_FILE, "wb") as f:
                    np.savez(f, **arrays)
            files = _digests(tmp)
            config = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "sklearn_rfcnn_version": __version__,
                "pipeline": description,
                "metadata": metadata,
                "files": files,
                "sizes": {rel: (tmp / rel).stat().st_size for rel in files},
            }
            # through JSON once, so the checksum is over exactly what load reads
            config = json.loads(json.dumps(config))
            config["checksum"] = _content_checksum(config)
            (tmp / PIPELINE_FILE).write_text(json.dumps(config, indent=1))
            # after the checksums, which do not cover it: the card is documentation
            card = _card(pipe, path.name, metadata, metrics, license, datasets)
            write_card(tmp, card)

    accelerator = _accelerator_of(pipe)
    if accelerator is None:
        write()
    else:
        from sklearn_rfcnn.estimators._accelerate import write_on_main_process

        # a step trained data-parallel (distributed="accelerate"): every
        # process calls save_pipeline, the main process writes
        write_on_main_process(accelerator, write)
    return path


def _accelerator_of(pipe):
    """The accelerator of a step trained with ``distributed="accelerate"``, or None."""
    for _, step in getattr(pipe, "steps", []):
        if isinstance(step, Pipeline):
            found = _accelerator_of(step)
        else:
            found = getattr(getattr(step, "net_", None), "accelerator", None)
        if found is not None:
            return found
    return None
