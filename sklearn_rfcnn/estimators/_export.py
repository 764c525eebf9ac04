"""ONNX export of fitted RF-CNN estimators (``export_onnx``, ``rfcnn export``).

:func:`export_onnx` writes the network of a fitted
:class:`~sklearn_rfcnn.RFCNNClassifier` (graph output: ``predict_proba``) or
:class:`~sklearn_rfcnn.RFCNNEmbedder` (graph output: ``transform``) as one
self-contained ONNX file:

* exporter: :func:`torch.onnx.export` with ``dynamo=True`` (the
  ``torch.export``-based exporter, torch's default since 2.9; it needs
  ``onnx`` and ``onnxscript``) at ONNX opset :data:`ONNX_OPSET`.  The legacy
  TorchScript exporter is deprecated and traces Python branches on shapes
  (the networks' tiny-input padding) as constants without a word;
  ``torch.export`` checks every shape branch against the dynamic axes and
  reports the range of frames over which the graph is exact;
* input ``"spectrograms"``: float32 ``(batch, C, F, frames)`` with a dynamic
  batch axis and a dynamic frame axis (static for an estimator fitted on 2-D
  tabular ``X``, whose number of columns is fixed);
* output ``"probabilities"`` (softmax, or sigmoid per tag) or
  ``"embeddings"`` (``forward_head(forward_features(x), pre_logits=True)``), float32;
* what a consumer needs beside the graph is stored in the model's
  ``metadata_props`` (:data:`METADATA_KEYS`).

The network is exported from a float32 CPU copy in eval mode, so the fitted
estimator (device, train/eval mode, memory format, weights) is untouched.  The
front end (:mod:`sklearn_rfcnn.transformers`: loading, mel spectrogram,
band standardisation) is not part of the graph.
"""

import contextlib
import copy
import importlib
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from sklearn_rfcnn._version import __version__

__all__ = []

#: ONNX opset of the exported graphs: the opset the dynamo exporter's torch
#: function library is written in (no version conversion step), run by every
#: onnxruntime release since 1.14.
ONNX_OPSET = 18

#: Name of the graph input and of the two kinds of graph output.
INPUT_NAME = "spectrograms"
OUTPUT_NAMES = {"proba": "probabilities", "features": "embeddings"}

#: Frames of the example batch traced by the exporter: long enough that no
#: network edge-pads along time, so the exported range starts at the shortest
#: clip the network handles without padding.
_EXAMPLE_FRAMES = 64
#: Clips in the example batch (a size-1 axis would be specialised to 1).
_EXAMPLE_BATCH = 2

#: ``metadata_props`` keys written into every exported model.
METADATA_KEYS = (
    "sklearn_rfcnn_version",
    "estimator",
    "arch",
    "output",
    "input_layout",
    "n_channels",
    "n_bands",
    "min_frames",
    "classes",
    "multilabel",
    "threshold",
    "receptive_field",
    "front_end",
)

_INSTALL_HINT = "pip install 'sklearn-rfcnn[onnx]'"


#: The ``export_onnx`` docstring of both estimators (:func:`onnx_docstring`).
_EXPORT_DOC = """Write {what} as an ONNX graph.

The graph takes a float32 batch of spectrograms ``(n, C, F, T)``
named ``"spectrograms"``, with a dynamic batch axis ``n`` and a
dynamic frame axis ``T`` (``C`` and ``F`` are those of the training
clips), and returns {returns}.  The graph always takes 4-D input: add
the channel axis to a 3-D batch ``(n, F, T)`` with ``X[:, None]``; for
a model fitted on 2-D ``(n, n_features)`` input use
``X[:, None, None, :]`` (its frame axis is then fixed to
``n_features``).

Exported with :func:`torch.onnx.export` (``dynamo=True``, the
``torch.export``-based exporter) at ONNX opset 18, from a float32 copy
of the network on the CPU in eval mode; the estimator itself (device,
mode, memory format, weights) is unchanged.  The graph computes in
float32 whatever ``precision`` says: it matches the estimator run with
``precision="32"``, and differs by bf16 rounding from one that runs
under bf16 autocast (``precision_ == "bf16"``, which ``"auto"`` picks on
CUDA and on CPUs with native bf16).  The front end
(:mod:`sklearn_rfcnn.transformers`: loading, mel spectrogram, band
standardisation) is not part of the graph: apply it first.{decisions}

The model's ``metadata_props`` hold ``classes`` (JSON, in output
order), ``multilabel``, ``threshold`` (tagging), ``input_layout``,
``n_channels``, ``n_bands``, ``min_frames``, ``receptive_field``,
``arch``, ``estimator``, ``output`` (here ``{output}``) and
``sklearn_rfcnn_version``.  ``min_frames`` is the shortest clip for which
``torch.export`` verified the graph (no edge padding inside the network:
17 frames for CP-ResNet at depth 26); check shorter clips against the
estimator before relying on them.

Parameters
----------
path : str or path-like
    The ``.onnx`` file to write (replaced if present); its folder
    must exist.

Returns
-------
path : pathlib.Path
    The file written.

Raises
------
sklearn.exceptions.NotFittedError
    If the estimator is not fitted.
ImportError
    If ``onnx`` or ``onnxscript`` is missing (install the extra:
    ``pip install 'sklearn-rfcnn[onnx]'``).

See Also
--------
{see_also}

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> import onnxruntime as ort
>>> from sklearn_rfcnn import {cls}
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(16, 8, 20)).astype("float32")
>>> est = {cls}(width=4, rho=2, depth=8, max_epochs=1, precision="32",
...     verbose=0, random_state=0).fit(X, [0, 1] * 8)
>>> path = est.export_onnx(f"{{tempfile.mkdtemp()}}/model.onnx")
>>> session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
>>> X_new = rng.normal(size=(3, 8, 50)).astype("float32")
>>> (out,) = session.run(None, {{"spectrograms": X_new[:, None]}})
>>> out.shape
{shape}
>>> bool(np.allclose(out, est.{method}(X_new), atol=1e-5))
True
"""


#: Per graph output (``export_onnx``'s ``output``), the parts of its docstring:
#: the estimator, the method the graph reproduces and the example's shape ...
_DOC_ESTIMATOR = {"proba": "RFCNNClassifier", "features": "RFCNNEmbedder"}
_DOC_METHOD = {"proba": "predict_proba", "features": "transform"}
_DOC_SHAPE = {"proba": "(3, 2)", "features": "(3, 16)"}
#: ... what is written and what the graph returns ...
_DOC_WHAT = {
    "proba": "the network and :meth:`predict_proba`",
    "features": "the network's embedding (:meth:`transform`)",
}
_DOC_RETURNS = {
    "proba": '``"probabilities"``, float32 ``(n, n_outputs_)``: the softmax over '
    "``classes_`` for multi-class models, one sigmoid per tag for multi-label "
    "ones -- :meth:`predict_proba` in float32",
    "features": '``"embeddings"``, float32 ``(n, n_embedding)``: the network\'s '
    "pooled embedding (``forward_head(forward_features(x), pre_logits=True)``), "
    "exactly what :meth:`transform` returns",
}
#: ... and what is left to the consumer.
_DOC_DECISIONS = {
    "proba": "  Decisions (``predict``, ``threshold``) are left to the consumer.",
    "features": "",
}


def onnx_docstring(output):
    """The ``export_onnx`` docstring of the estimator whose graph is ``output``.

    One text (``_EXPORT_DOC``) for both estimators; the ``_DOC_*`` tables fill
    in what differs between the probability and the embedding graph.
    """
    (other,) = set(_DOC_ESTIMATOR) - {output}
    text = _EXPORT_DOC.format(
        cls=_DOC_ESTIMATOR[output],
        method=_DOC_METHOD[output],
        shape=_DOC_SHAPE[output],
        what=_DOC_WHAT[output],
        returns=_DOC_RETURNS[output],
        decisions=_DOC_DECISIONS[output],
        output=_DOC_METHOD[output],
        see_also=f"{_DOC_ESTIMATOR[other]}.export_onnx : The {OUTPUT_NAMES[other]} "
        "graph.",
    )
    body = "\n".join(("        " + line) if line else "" for line in text.splitlines())
    return body.lstrip() + "\n        "


class ExportMixin:
    """``export_onnx`` for an estimator whose class sets ``_onnx_output``.

    Each subclass that sets ``_onnx_output`` (``"proba"`` or ``"features"``)
    gets its own ``export_onnx`` with the docstring of that graph.
    """

    _onnx_output = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        output = cls.__dict__.get("_onnx_output")
        if output is None:
            return

        def export_onnx_method(self, path):
            check_is_fitted(self)
            return export_onnx(self, path, output=output)

        export_onnx_method.__name__ = "export_onnx"
        export_onnx_method.__qualname__ = f"{cls.__name__}.export_onnx"
        export_onnx_method.__module__ = cls.__module__
        export_onnx_method.__doc__ = onnx_docstring(output)
        cls.export_onnx = export_onnx_method


def check_onnx_exporter():
    """Import what ``torch.onnx.export(dynamo=True)`` needs, or explain the extra."""
    missing = []
    for name in ("onnx", "onnxscript"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(
            f"export_onnx needs {' and '.join(missing)} (torch's ONNX exporter "
            f"depends on them); install the optional extra: {_INSTALL_HINT}"
        )
    if not hasattr(getattr(torch.export, "Dim", None), "AUTO"):
        raise ImportError(
            f"export_onnx needs torch>=2.6 (torch.export.Dim.AUTO); this is torch "
            f"{torch.__version__}. Upgrade torch, then {_INSTALL_HINT}"
        )


class _ProbaGraph(nn.Module):
    """The network followed by ``predict_proba``'s softmax or sigmoid."""

    def __init__(self, network, multilabel):
        super().__init__()
        self.network = network
        self.multilabel = bool(multilabel)

    def forward(self, x):
        logits = self.network(x)
        if self.multilabel:
            return torch.sigmoid(logits)
        return torch.softmax(logits, dim=1)


class _EmbeddingGraph(nn.Module):
    """The network's pooled embedding, exactly as ``transform`` computes it."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        return self.network.forward_head(
            self.network.forward_features(x), pre_logits=True
        )


def _cpu_copy(module):
    """A float32, contiguous-format, eval-mode copy of ``module`` on the CPU.

    Parameters and buffers are copied to the CPU first and handed to
    :func:`copy.deepcopy` through its memo, so a CUDA module is neither moved
    nor duplicated on its device, and a channels-last one keeps its layout.
    """
    memo = {}
    for tensor in [*module.parameters(), *module.buffers()]:
        cpu = tensor.detach().to("cpu", copy=True)
        if cpu.is_floating_point():
            cpu = cpu.float()
        cpu = cpu.contiguous()
        if isinstance(tensor, nn.Parameter):
            cpu = nn.Parameter(cpu, requires_grad=False)
        memo[id(tensor)] = cpu
    return copy.deepcopy(module, memo).eval()


def _min_frames(onnx_program, time_axis_dynamic):
    """Shortest clip (frames) of the exported range, from ``torch.export``."""
    if not time_axis_dynamic:
        return None
    try:
        program = onnx_program.exported_program
        name = program.graph_signature.user_inputs[0]
        node = next(n for n in program.graph.nodes if n.name == name)
        frames = node.meta["val"].shape[3]
        if isinstance(frames, int):
            return frames
        return int(program.range_constraints[frames.node.expr].lower)
    except Exception:  # the range is informative only
        return None


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's chatter that says nothing about this model."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping ..."
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="torch")
            warnings.filterwarnings("ignore", category=FutureWarning, module="copyreg")
            warnings.filterwarnings(
                "ignore", category=DeprecationWarning, module="onnxscript"
            )
            yield
    finally:
        logger.setLevel(level)


def _json_list(values):
    values = np.asarray(values)
    if values.dtype.kind in "biuf":
        return json.dumps(values.tolist())
    return json.dumps([str(v) for v in values.tolist()])


def _metadata(estimator, output, min_frames, front_end):
    n_channels, n_bands = estimator._clip_shape
    multilabel = bool(estimator._multilabel)
    props = {
        "sklearn_rfcnn_version": __version__,
        "estimator": type(estimator).__name__,
        "arch": str(estimator.arch),
        "output": "predict_proba" if output == "proba" else "transform",
        "input_layout": "NCFT: float32 (batch, channels, bands, frames)",
        "n_channels": str(int(n_channels)),
        "n_bands": str(int(n_bands)),
        "classes": _json_list(estimator.classes_),
        "multilabel": "true" if multilabel else "false",
        "receptive_field": json.dumps(list(map(int, estimator.receptive_field_))),
    }
    if min_frames is not None:
        props["min_frames"] = str(int(min_frames))
    if multilabel:
        props["threshold"] = json.dumps(np.asarray(estimator.threshold).tolist())
    if front_end is not None:
        props["front_end"] = str(front_end)
    return props


def export_onnx(estimator, path, *, output, front_end=None):
    """Write the fitted network of ``estimator`` as an ONNX file.

    The shared implementation of ``RFCNNClassifier.export_onnx`` and
    ``RFCNNEmbedder.export_onnx`` (see their docstrings); the caller checks
    that the estimator is fitted.

    Parameters
    ----------
    estimator : RFCNNClassifier or RFCNNEmbedder
        A fitted estimator; it is not modified.
    path : str or path-like
        The ``.onnx`` file to write (replaced if present); its folder must
        exist.
    output : {"proba", "features"}
        Graph output: ``predict_proba`` (softmax, or sigmoid for tags) or the
        pooled embedding of ``transform``.
    front_end : str or None, default=None
        Description of the preprocessing the graph expects, stored as the
        ``front_end`` metadata entry (``rfcnn export`` writes the saved
        pipeline's steps there).

    Returns
    -------
    path : pathlib.Path
        The file written.
    """
    if output not in OUTPUT_NAMES:
        raise ValueError(f"output={output!r} must be 'proba' or 'features'.")
    check_onnx_exporter()
    path = Path(os.fspath(path)).expanduser()
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"the folder of {os.fspath(path)!r} does not exist; create it first."
        )
    network = _cpu_copy(estimator.net_.module_)
    if output == "proba":
        graph = _ProbaGraph(network, estimator._multilabel)
    else:
        graph = _EmbeddingGraph(network)
    graph.eval()

    n_channels, n_bands = estimator._clip_shape
    two_d = bool(getattr(estimator, "_two_d", False))
    frames = int(estimator.n_features_in_) if two_d else _EXAMPLE_FRAMES
    example = torch.randn(_EXAMPLE_BATCH, n_channels, n_bands, frames)
    axes = {0: torch.export.Dim.AUTO}
    if not two_d:
        axes[3] = torch.export.Dim.AUTO
    output_name = OUTPUT_NAMES[output]
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            graph,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[output_name],
            dynamic_shapes={"x": axes},
            opset_version=ONNX_OPSET,
            external_data=False,
            verbose=False,
        )
    names = {"batch": 0} if two_d else {"batch": 0, "frames": 3}
    renames = {}
    input_shape = program.model.graph.inputs[0].shape
    for label, axis in names.items():
        dim = input_shape[axis]
        if not isinstance(dim, int) and getattr(dim, "value", None):
            renames[dim.value] = label
    if renames:
        program.rename_axes(renames)
    min_frames = frames if two_d else _min_frames(program, True)
    for key, value in _metadata(estimator, output, min_frames, front_end).items():
        program.model.metadata_props[key] = value
    program.model.doc_string = (
        f"{type(estimator).__name__} ({estimator.arch}) exported by sklearn-rfcnn "
        f"{__version__}: {INPUT_NAME} float32 (batch, {n_channels}, {n_bands}, "
        f"frames) -> {output_name}; the front end is not part of the graph."
    )
    program.save(path, external_data=False)
    return path
