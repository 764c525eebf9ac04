"""Model cards: the ``README.md`` that ``save`` and ``save_pipeline`` write.

A model folder carries a human-readable card beside its machine-readable
files: what the model does (multi-class classes or multi-label tags, in
output order), what it expects as input (the front end), the architecture,
the receptive field, how it was trained, held-out metrics when the caller
passes them, the library version and how to load the folder.

The card is documentation, never configuration: ``load`` and
``load_pipeline`` neither read it nor need it (folders saved before cards
existed have none), and no checksum covers it, so a user may edit it (add
notes, fill in the data set) without breaking the model.  ``config.json`` and
``pipeline.json`` stay the authority; the card is rendered from the same
fitted state when the folder is written, inside the same scratch folder, so
it is replaced atomically together with the model.

Why hand-built Markdown rather than a card library:

* ``skops.card.Card`` works offline and renders clean Markdown
  (``Card(model, template=None, model_diagram=False)`` never pickles or
  inspects the model), but skops is an optional extra of this package
  (``pip install sklearn-rfcnn[skops]``) while ``save`` is core and must
  write the card everywhere; ``import skops.card`` also costs 1-3.5 s per
  process (it imports pandas; measured with ``python -X importtime``), and
  its tables do not escape ``|`` in cells (measured: a cell ``a | b``
  splits the row), so the escaping below would be needed anyway;
* ``huggingface_hub.ModelCard`` is not a dependency (the tests parse the
  cards with it where it is installed).

The renderer is therefore the few lines below; the card keeps the Hugging
Face layout, so it can be uploaded to a model hub as it is: YAML front
matter with ``library_name``, ``pipeline_tag`` (``audio-classification`` for
a classifier or tagger, ``feature-extraction`` for an embedder), ``tags``,
the optional ``license`` and ``datasets`` given to ``save`` /
``save_pipeline``, and a ``model-index`` holding the ``metrics`` given there
(what the Hub and ``huggingface_hub.ModelCard`` read as evaluation results),
then Markdown sections.  The YAML is written by hand (strings as JSON
strings, which YAML reads as double-quoted scalars), so no YAML library is
needed.

This module imports only numpy and the package's version and exceptions, so
the estimators layer may use it; the pipeline-level facts (front-end steps,
the RF in seconds and Hz from :func:`sklearn_rfcnn.inspection.describe_pipeline`)
are gathered by :mod:`sklearn_rfcnn._pipeline_io` and passed in.
"""

import json
import math
import numbers
from collections.abc import Mapping

import numpy as np

from sklearn_rfcnn._version import __version__
from sklearn_rfcnn.exceptions import ParameterError

__all__ = []

CARD_FILE = "README.md"

#: The card's YAML parameters of ``save`` and ``save_pipeline`` (docstrings).
CARD_YAML_DOC = """
license : str, default=None
    License identifier for the card's YAML (e.g. ``"mit"``, the Hub's ids).
datasets : str or list of str, default=None
    Data set id(s) for the card's YAML; the first also names the data of the
    ``model-index`` results.
"""

#: Architecture parameters shown in the card, read from the built network
#: where it records them (the effective values, e.g. ``rho=None`` resolved).
_ARCH_PARAMS = (
    "rho",
    "rho_f",
    "rho_t",
    "width",
    "depth",
    "head",
    "frequency_aware",
    "shake_shake",
)
#: Training-recipe parameters shown in the card.
_RECIPE_PARAMS = (
    "optimizer",
    "lr",
    "weight_decay",
    "lr_schedule",
    "warmup",
    "max_epochs",
    "batch_size",
    "mixup_alpha",
    "roll",
    "freq_mask",
    "time_mask",
    "swa",
    "crop_frames",
    "class_weight",
    "output_bias",
    "validation_fraction",
    "early_stopping",
    "random_state",
)


# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------


def _cell(value):
    """Text for one table cell: one line, ``|`` escaped."""
    text = value if isinstance(value, str) else _value(value)
    return " ".join(str(text).split()).replace("|", "\\|")


#: Longest parameter value shown in full (an array parameter of a user's
#: step is cut, the card is not a dump of the configuration).
_MAX_VALUE_CHARS = 120


def _value(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, np.ndarray):
        value = value.tolist()
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


def _table(header, rows):
    lines = [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _params_text(params):
    return ", ".join(f"{k}={_value(v)}" for k, v in params.items())


# --------------------------------------------------------------------------
# facts
# --------------------------------------------------------------------------


def check_metrics(metrics):
    """``metrics`` as ``{str: float}``, or a ParameterError naming the entry."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise ParameterError(
            f"metrics must be a dict of name -> number, got "
            f"{type(metrics).__name__}; e.g. metrics={{'pr_auc_macro': 0.81}}."
        )
    out = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise ParameterError(
                f"metrics key {name!r} must be a non-empty string (the metric name)."
            )
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise ParameterError(
                f"metrics[{name!r}]={value!r} must be a number (a held-out score)."
            )
        out[name] = float(value)
    return out


def check_card_info(license=None, datasets=None):
    """``(license, datasets)`` for the card's YAML, or a ParameterError.

    ``license``: a license identifier (e.g. ``"mit"``, ``"cc-by-4.0"``, the
    Hub's ids) or None; ``datasets``: a data set id or a list of them.
    """
    if license is not None and (
        not isinstance(license, str) or not license.strip() or "\n" in license
    ):
        raise ParameterError(
            f"license={license!r} must be a license identifier on one line, "
            "e.g. license='mit' or 'cc-by-4.0' (the Hub's ids), or None."
        )
    if datasets is None:
        return license, []
    items = [datasets] if isinstance(datasets, str) else datasets
    try:
        items = list(items)
    except TypeError:
        items = None
    if items is None or not all(
        isinstance(d, str) and d.strip() and "\n" not in d for d in items
    ):
        raise ParameterError(
            f"datasets={datasets!r} must be a data set id or a list of them, "
            "e.g. datasets=['openmic-2018'], or None."
        )
    return license, items


def estimator_facts(est, target_names=None):
    """What the card says about a fitted RF-CNN estimator (plain values).

    ``target_names`` (e.g. a pipeline's ``metadata["target_names"]``) names
    the outputs when it lists one name per output.
    """
    params = est.get_params(deep=False)
    multilabel = bool(getattr(est, "_multilabel", False))
    classes = np.asarray(est.classes_).tolist()
    names = None
    if target_names is not None:
        listed = [str(t) for t in target_names]
        if len(listed) == len(classes):
            names = listed
    module = est.net_.module_
    arch = {"arch": params.get("arch")}
    for key in _ARCH_PARAMS:
        value = getattr(module, key, params.get(key))
        if value is not None:
            arch[key] = value
    arch["parameter count"] = int(sum(p.numel() for p in module.parameters()))
    embedding = getattr(module, "num_features", None)
    history = est.history_.to_list() if hasattr(est.history_, "to_list") else []
    history = list(history)
    first = history[0].get("batches", []) if history else []
    last = history[-1] if history else {}
    training = {
        "epochs": len(history),
        "train_examples": sum(b.get("train_batch_size", 0) for b in first),
        "valid_examples": sum(b.get("valid_batch_size", 0) for b in first),
        "train_loss": last.get("train_loss"),
        "valid_loss": last.get("valid_loss"),
    }
    recipe = {k: params[k] for k in _RECIPE_PARAMS if k in params}
    recipe["precision_"] = getattr(est, "precision_", None)
    recipe["channels_last_"] = getattr(est, "channels_last_", None)
    recipe["inference_channels_last_"] = getattr(est, "inference_channels_last_", None)
    recipe["device"] = str(params.get("device"))
    rf = est.receptive_field_
    return {
        "estimator": type(est).__name__,
        "is_embedder": hasattr(est, "transform") and not hasattr(est, "predict"),
        "multilabel": multilabel,
        "classes": classes,
        "names": names,
        "clip_shape": tuple(int(s) for s in getattr(est, "_clip_shape", ())),
        "two_d": bool(getattr(est, "_two_d", False)),
        "embedding": None if embedding is None else int(embedding),
        "front_end_checksum": getattr(est, "front_end_checksum_", None),
        "arch": arch,
        "rf": (int(rf.freq), int(rf.time)),
        "recipe": recipe,
        "training": training,
        "threshold": params.get("threshold"),
    }


# --------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------


def _labels_section(facts, heading="Labels"):
    n = len(facts["classes"])
    if facts["multilabel"]:
        task = (
            f"Multi-label tagging: {n} tags, one independent sigmoid "
            "probability each (`predict_proba` returns `(n_clips, "
            f"{n})`; `predict` thresholds it at `threshold="
            f"{_value(facts['threshold'])}`)."
        )
        if facts["names"] is None:
            task += (
                " The tag names were not given to the model (it was fitted on "
                "an indicator matrix `y`): output *i* is column *i* of that `y`."
            )
    else:
        task = (
            f"Multi-class classification: {n} classes, softmax probabilities "
            f"(`predict_proba` returns `(n_clips, {n})`; `predict` returns the "
            "label)."
        )
    rows = []
    for i, label in enumerate(facts["classes"]):
        shown = facts["names"][i] if facts["names"] is not None else label
        rows.append((i, shown))
    return [
        f"## {heading}",
        "",
        task + " Output order:",
        "",
        _table(("output", "label"), rows),
    ]


def _architecture_section(facts):
    arch = facts["arch"]
    rows = [(k, _value(v)) for k, v in arch.items()]
    c, f = facts["clip_shape"] if len(facts["clip_shape"]) == 2 else ("?", "?")
    lines = [
        "## Architecture",
        "",
        _table(("parameter", "value"), rows),
        "",
        f"- input: `(n_clips, {c}, {f}, n_frames)` spectrograms ({c} channel(s) x "
        f"{f} bands, any number of frames)"
        + (" given as 2-D `(n_clips, n_features)` rows" if facts["two_d"] else "")
        + ".",
    ]
    if facts["embedding"] is not None:
        lines.append(f"- pooled embedding: {facts['embedding']} features")
    return lines


def _rf_section(facts, description=None):
    fr, tr = facts["rf"]
    lines = [
        "## Receptive field",
        "",
        f"- pixels: {fr} x {tr} px (frequency x time: mel bins x frames)",
    ]
    if description is None:
        lines.append(
            "- seconds and Hz: not known to the estimator alone (they depend on "
            "the front end); compute them with "
            "`sklearn_rfcnn.receptive_field.describe_receptive_field(rf, sr=..., "
            "hop_length=..., n_mels=...)` or save the whole pipeline with "
            "`sklearn_rfcnn.save_pipeline`."
        )
        return lines
    # three decimals: the card is read back by tools, not just by people
    lines += [
        "  " * depth + f"- {text}"
        for depth, text in description.summary_lines(seconds_digits=3)
    ]
    return lines


def _training_section(facts, n_clips=None):
    t = facts["training"]
    recipe = dict(facts["recipe"])
    lines = ["## Training", ""]
    if n_clips is not None:
        lines.append(f"- training clips: {n_clips} (the pipeline's metadata 'n_train')")
    lines.append(
        f"- examples per epoch: {t['train_examples']} for training"
        + (
            f", {t['valid_examples']} held out for validation"
            if t["valid_examples"]
            else ""
        )
        + " (counted from the training history)"
    )
    lines.append(
        "- per-label counts: not recorded (the estimator does not keep its "
        "training targets)"
    )
    lines.append(f"- epochs run: {t['epochs']}")
    for key in ("train_loss", "valid_loss"):
        if t[key] is not None:
            lines.append(f"- final {key.replace('_', ' ')}: {t[key]:.4g}")
    lines += [
        "",
        _table(("setting", "value"), [(k, _value(v)) for k, v in recipe.items()]),
    ]
    return lines


def _metrics_section(metrics):
    if not metrics:
        return [
            "## Evaluation",
            "",
            "No held-out metrics were given when the model was saved "
            "(pass `metrics={name: value}` to `save` / `save_pipeline`).",
        ]
    return [
        "## Evaluation",
        "",
        "Held-out metrics given when the model was saved:",
        "",
        _table(("metric", "value"), [(k, f"{v:.6g}") for k, v in metrics.items()]),
    ]


def _yaml(value):
    """One YAML scalar: a JSON string (YAML's double-quoted style) or number."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return repr(float(value))


def _front_matter(name, *, multilabel, embedder, metrics, license=None, datasets=()):
    """The YAML the Hub reads: pipeline tag, tags, license, data, model-index."""
    tags = ["sklearn-rfcnn", "cp-resnet", "audio"]
    tags.append("audio-tagging" if multilabel else "audio-classification")
    pipeline_tag = "feature-extraction" if embedder else "audio-classification"
    lines = ["---", "library_name: sklearn-rfcnn"]
    if license is not None:
        lines.append(f"license: {_yaml(license.strip())}")
    if datasets:
        lines += ["datasets:"] + [f"- {_yaml(d.strip())}" for d in datasets]
    lines.append(f"pipeline_tag: {pipeline_tag}")
    lines += ["tags:"] + [f"- {t}" for t in tags]
    if metrics:
        # Hugging Face's model-index: one result, the metrics given to save
        task = (
            "Feature extraction"
            if embedder
            else ("Audio tagging" if multilabel else "Audio classification")
        )
        data = datasets[0].strip() if datasets else "held-out data"
        lines += [
            "model-index:",
            f"- name: {_yaml(name)}",
            "  results:",
            "  - task:",
            f"      type: {pipeline_tag}",
            f"      name: {_yaml(task)}",
            "    dataset:",
            f"      type: {_yaml(data if datasets else 'custom')}",
            f"      name: {_yaml(data)}",
            "    metrics:",
        ]
        for metric, value in metrics.items():
            lines += [
                f"    - type: {_yaml(metric)}",
                f"      value: {_yaml(value)}",
                f"      name: {_yaml(metric)}",
            ]
    return [*lines, "---", ""]


def _footer(load_lines, config_file):
    return [
        "## How to load",
        "",
        "```python",
        *load_lines,
        "```",
        "",
        f"Loading reads `{config_file}` and the weights (no pickle) and checks "
        "them against their checksums; it does not read this card, which you "
        "may edit freely.",
        "",
        "## Library",
        "",
        f"Saved with sklearn-rfcnn {__version__}.",
    ]


# --------------------------------------------------------------------------
# cards
# --------------------------------------------------------------------------


def estimator_card(est, folder_name, metrics=None, *, license=None, datasets=None):
    """The card of a folder written by an estimator's ``save``."""
    facts = estimator_facts(est)
    metrics = check_metrics(metrics)
    license, datasets = check_card_info(license, datasets)
    cls = facts["estimator"]
    kind = "embedder" if facts["is_embedder"] else "classifier"
    lines = [
        *_front_matter(
            folder_name,
            multilabel=facts["multilabel"],
            embedder=facts["is_embedder"],
            metrics=metrics,
            license=license,
            datasets=datasets,
        ),
        f"# {folder_name}: {cls}",
        "",
        f"A CP-ResNet-family {kind} ({cls}, architecture `{facts['arch']['arch']}`) "
        "saved by `save()`.",
        "",
    ]
    heading = "Labels the CNN was trained on" if facts["is_embedder"] else "Labels"
    lines += [*_labels_section(facts, heading), ""]
    lines += [
        "## Front end",
        "",
        "The front end (audio loading, spectrogram, normalisation) is **not part "
        "of this folder**: the model takes spectrograms computed exactly as for "
        "training. Save the whole pipeline with `sklearn_rfcnn.save_pipeline` to "
        "keep the front end with the model.",
    ]
    if facts["front_end_checksum"]:
        lines.append(
            "The model was fitted on a spectrogram store; it refuses stores of "
            f"another front end (front-end checksum `{facts['front_end_checksum']}`)."
        )
    lines.append("")
    lines += [*_architecture_section(facts), ""]
    lines += [*_rf_section(facts), ""]
    lines += [*_training_section(facts), ""]
    lines += [*_metrics_section(metrics), ""]
    call = "transform(X)" if facts["is_embedder"] else "predict_proba(X)"
    lines += _footer(
        [
            f"from sklearn_rfcnn import {cls}",
            "",
            f'model = {cls}.load("{folder_name}")',
            f"model.{call}  # X: spectrograms shaped as above",
        ],
        "config.json",
    )
    return "\n".join(lines) + "\n"


def _pipeline_labels(facts, final, cnn):
    """The card's label sections: the final step's outputs and the CNN's labels."""
    if facts is not None and final is cnn:
        return [*_labels_section(facts), ""]
    classes = getattr(final, "classes_", None)
    lines = ["## Labels", ""]
    if classes is not None:
        rows = list(enumerate(np.asarray(classes).tolist()))
        lines += [
            f"Outputs of the final step ({type(final).__name__}), in order:",
            "",
            _table(("output", "label"), rows),
        ]
    else:
        lines.append(
            f"The final step ({type(final).__name__}) has no labels "
            "(a transformer or regressor)."
        )
    lines.append("")
    if facts is not None:
        lines += _labels_section(facts, heading="Labels the CNN was trained on")
        lines.append("")
    return lines


def pipeline_card(
    folder_name,
    steps,
    cnn,
    final,
    description=None,
    *,
    metadata=None,
    metrics=None,
    first_step=None,
    license=None,
    datasets=None,
):
    """The card of a folder written by ``save_pipeline``.

    Parameters
    ----------
    folder_name : str
    steps : list of (name, class name, dict of parameters or None)
        The pipeline's steps in order (nested pipelines flattened with
        ``outer__inner`` names); ``None`` parameters mean "see Architecture".
    cnn : fitted RF-CNN estimator or None
    final : the last step (its ``classes_`` are the outputs if it is not the
        CNN).
    description : RFDescription or None
        The RF in seconds and Hz (``describe_pipeline``), if it could be
        computed.
    metadata : dict or None
        ``target_names`` and ``n_train`` are used when present.
    license, datasets : see :func:`check_card_info`
    """
    metadata = metadata or {}
    metrics = check_metrics(metrics)
    license, datasets = check_card_info(license, datasets)
    facts = None if cnn is None else estimator_facts(cnn, metadata.get("target_names"))
    multilabel = bool(facts and facts["multilabel"])
    embedder = not (hasattr(final, "predict") or hasattr(final, "predict_proba"))
    lines = [
        *_front_matter(
            folder_name,
            multilabel=multilabel,
            embedder=embedder,
            metrics=metrics,
            license=license,
            datasets=datasets,
        ),
        f"# {folder_name}: pipeline",
        "",
        "A fitted scikit-learn pipeline (front end and model) saved by "
        "`sklearn_rfcnn.save_pipeline`.",
        "",
    ]
    lines += _pipeline_labels(facts, final, cnn)
    lines += [
        "## Front end",
        "",
        "Every step of the pipeline, in order, with its parameters:",
        "",
        _table(
            ("step", "class", "parameters"),
            [
                (
                    name,
                    cls,
                    "see Architecture"
                    if p is None
                    else (_params_text(p) or "(no parameters)"),
                )
                for name, cls, p in steps
            ],
        ),
        "",
    ]
    if facts is not None:
        lines += [*_architecture_section(facts), ""]
        lines += [*_rf_section(facts, description), ""]
        lines += [*_training_section(facts, metadata.get("n_train")), ""]
    lines += [*_metrics_section(metrics), ""]
    example = '["clip.wav"]' if first_step == "AudioLoader" else "waveforms"
    call = (
        "predict_proba"
        if hasattr(final, "predict_proba")
        else ("predict" if hasattr(final, "predict") else "transform")
    )
    lines += _footer(
        [
            "from sklearn_rfcnn import load_pipeline",
            "",
            f'pipe = load_pipeline("{folder_name}")',
            f"pipe.{call}({example})",
        ],
        "pipeline.json",
    )
    return "\n".join(lines) + "\n"


def write_card(folder, text):
    """Write ``text`` as the card of ``folder`` (a scratch folder being built)."""
    with open(folder / CARD_FILE, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return folder / CARD_FILE
