"""Saving and loading whole fitted pipelines without pickle.

:func:`save_pipeline` writes a folder::

    PATH/pipeline.json     format, Pipeline parameters, one entry per step
                           (class, parameters, JSON-able fitted attributes),
                           user metadata
    PATH/arrays.npz        fitted arrays of the front-end steps (e.g. the
                           BandStandardizer's mean_ and scale_), read back with
                           numpy's allow_pickle=False
    PATH/steps/stepN/      an RFCNNClassifier/RFCNNEmbedder written by its own
                           save() (JSON + weights read with weights_only=True),
                           or a nested Pipeline in this same layout
    PATH/steps/stepN.skops another scikit-learn step, stored with skops.io
                           (optional dependency) and loaded only when every
                           type it holds is trusted

    PATH/README.md         a model card for people (sklearn_rfcnn._model_card):
                           labels in output order, every step's parameters,
                           architecture, receptive field in px, s and Hz,
                           training recipe, metrics; never read by load

Nothing is pickled, so a folder from an untrusted source cannot run code when
loaded.  The folder is written beside the target under a temporary name and
renamed into place (:mod:`sklearn_rfcnn.utils._atomic`), so a reader -- or a
writer killed at any point -- sees the complete old or the complete new
pipeline, never a mix.

``pipeline.json`` records the SHA-256 of every other file in the folder, and
each CNN step's ``config.json`` the checksum of its own configuration and
weights; :func:`load_pipeline` verifies them and checks every step's
parameters with the constraints ``fit`` uses, so a truncated, tampered or
mixed-up folder raises a :class:`~sklearn_rfcnn.exceptions.DataError` naming
the file and the field instead of loading a model that predicts wrongly.
Since format 2, ``pipeline.json`` also carries a checksum of its own
canonical content (every parameter, fitted field, metadata entry such as the
order of ``target_names``, and file digest) and the size of every file; it is
checked first, and each file's size and digest before the file is read.
Every file must be a regular one; ``arrays.npz`` may hold only the plain
members ``pipeline.json`` refers to (checked before any is inflated), and a
front-end step only its own fitted fields (``_FITTED_FIELDS``).  Format 1
folders (no checksum of ``pipeline.json``) still load with equal outputs.
Folders written before checksums existed are checked field by field only.
Checksums catch corruption and careless edits, not a determined attacker
(who can rewrite a file and its checksum together; that needs a signature).
The card ``README.md`` is deliberately outside the checksums (it is written
after them and :func:`_digests` skips it): it is documentation a user may
edit, and a folder without one (saved before cards existed) loads the same.
"""

from sklearn_rfcnn._pipeline_io._format import (  # noqa: F401 (package-level)
    _FITTED_FIELDS,
    ARRAYS_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    PIPELINE_FILE,
    STEPS_DIR,
)
from sklearn_rfcnn._pipeline_io._read import load_pipeline
from sklearn_rfcnn._pipeline_io._write import save_pipeline

__all__ = ["load_pipeline", "save_pipeline"]
