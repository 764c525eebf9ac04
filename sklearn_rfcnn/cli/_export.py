"""``rfcnn export``: write a trained model's network as an ONNX file.

MODEL is a model folder from ``rfcnn fit`` (any
:func:`sklearn_rfcnn.save_pipeline` folder whose last step is an
``RFCNNClassifier`` or ``RFCNNEmbedder``) or a folder written by an
estimator's own ``save``.  The graph is that of
:meth:`RFCNNClassifier.export_onnx <sklearn_rfcnn.RFCNNClassifier.export_onnx>`
(probabilities) or, with ``--embeddings`` or for an embedder, of
:meth:`RFCNNEmbedder.export_onnx <sklearn_rfcnn.RFCNNEmbedder.export_onnx>`.
The front end (loading, mel spectrogram, standardisation) stays outside the
graph; its saved steps are described in the model's ``front_end`` metadata.
"""

import sys
from pathlib import Path

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]


#: ``rfcnn export --help``: the one-line help and the description.
HELP = "write a trained model's network as an ONNX file"
DESCRIPTION = (
    "Load a model folder written by 'rfcnn fit' (or by an "
    "estimator's save()) and write its network as an ONNX graph from a "
    "float32 spectrogram batch (batch, channels, bands, frames) -- dynamic "
    "batch and frame axes -- to the class/tag probabilities (or, with "
    "--embeddings, the pooled embeddings). The front end (audio loading, "
    "mel spectrogram, band standardisation) is not part of the graph. "
    "Needs the optional extra: pip install 'sklearn-rfcnn[onnx]'."
)


def add_arguments(p):
    """Add the arguments of ``rfcnn export`` to its parser."""
    p.add_argument(
        "model", metavar="MODEL", help="model folder from 'rfcnn fit' or save()"
    )
    p.add_argument("output", metavar="OUTPUT", help="the .onnx file to write")
    p.add_argument(
        "--embeddings",
        action="store_true",
        help="export the pooled embeddings (as 'rfcnn embed' computes them) "
        "instead of the probabilities",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUTPUT if it exists",
    )


def _load_estimator(folder):
    """``(estimator, front_end description)`` of a model folder."""
    from sklearn.pipeline import Pipeline

    from sklearn_rfcnn import load_pipeline
    from sklearn_rfcnn._pipeline_io import PIPELINE_FILE
    from sklearn_rfcnn.cli import CLIError
    from sklearn_rfcnn.estimators import RFCNNClassifier, RFCNNEmbedder
    from sklearn_rfcnn.estimators._persistence import CONFIG_FILE

    estimators = (RFCNNClassifier, RFCNNEmbedder)
    if (folder / PIPELINE_FILE).is_file():
        pipe = load_pipeline(folder)
        last = pipe.steps[-1][1] if isinstance(pipe, Pipeline) else pipe
        if not isinstance(last, estimators):
            raise CLIError(
                f"{str(folder)!r} holds a saved pipeline whose last step is "
                f"{type(last).__name__}, not an RFCNNClassifier or RFCNNEmbedder; "
                "export needs one written by 'rfcnn fit'."
            )
        front = [type(step).__name__ for _, step in pipe.steps[:-1]]
        front_end = " -> ".join(repr(step) for _, step in pipe.steps[:-1])
        return last, (front_end or None), front
    if (folder / CONFIG_FILE).is_file():
        import json

        name = json.loads((folder / CONFIG_FILE).read_text()).get("estimator")
        by_name = {cls.__name__: cls for cls in estimators}
        if name not in by_name:
            raise CLIError(
                f"{str(folder / CONFIG_FILE)!r} describes {name!r}, not an "
                "RFCNNClassifier or RFCNNEmbedder."
            )
        return by_name[name].load(folder), None, []
    raise CLIError(
        f"{str(folder)!r} is not a model folder: it holds neither {PIPELINE_FILE} "
        f"('rfcnn fit', save_pipeline) nor {CONFIG_FILE} (an estimator's save())."
    )


def run(args):
    """Export and print what was written; returns 0."""
    from sklearn_rfcnn.cli import CLIError
    from sklearn_rfcnn.cli._model import check_output_file
    from sklearn_rfcnn.estimators import RFCNNEmbedder
    from sklearn_rfcnn.estimators._export import (
        INPUT_NAME,
        OUTPUT_NAMES,
        check_onnx_exporter,
        export_onnx,
    )
    from sklearn_rfcnn.utils._atomic import atomic_file

    folder = Path(args.model).expanduser()
    out = Path(args.output).expanduser()
    if not folder.is_dir():
        raise CLIError(f"model folder {str(folder)!r} does not exist.")
    if out.suffix != ".onnx":
        raise CLIError(f"OUTPUT {str(out)!r} must end in .onnx.")
    check_output_file(out, what="OUTPUT", overwrite=args.overwrite)
    check_onnx_exporter()  # fail before loading the model
    estimator, front_end, front = _load_estimator(folder)
    embed = args.embeddings or isinstance(estimator, RFCNNEmbedder)
    output = "features" if embed else "proba"
    with atomic_file(out) as scratch:
        export_onnx(estimator, scratch, output=output, front_end=front_end)
    n_channels, n_bands = estimator._clip_shape
    if embed:
        n_out = estimator.net_.module_.num_features
        what = f"{OUTPUT_NAMES[output]} (batch, {n_out})"
    else:
        kind = "tag" if estimator._multilabel else "class"
        what = (
            f"{OUTPUT_NAMES[output]} (batch, {estimator.n_outputs_}) "
            f"[{kind} probabilities]"
        )
    frames = (
        str(estimator.n_features_in_)
        if getattr(estimator, "_two_d", False)
        else "frames"
    )
    print(f"wrote {out}")
    print(f"  input  {INPUT_NAME}: float32 (batch, {n_channels}, {n_bands}, {frames})")
    print(f"  output {what}")
    if not embed:
        labels = [str(c) for c in estimator.classes_]
        more = f", ... ({len(labels)} in all)" if len(labels) > 10 else ""
        title = "tags" if estimator._multilabel else "classes"
        print(f"  {title}: {', '.join(labels[:10])}{more}")
    if front:
        print(f"  front end (not in the graph): {' -> '.join(front)}")
    sys.stdout.flush()
    return 0
