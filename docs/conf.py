"""Sphinx configuration for sklearn-rfcnn (numpydoc + sphinx-gallery + pydata theme).

``make docs`` builds with ``-W --keep-going``: every warning is an error except
intersphinx's "failed to reach any of the inventories", which an offline build
always raises (the inventories of scikit-learn, torch, librosa, skorch and
optuna live on the web).  That one warning is dropped by name with a logging
filter below; Sphinx gives it no warning type that ``suppress_warnings``
could name.
"""

import logging
import os
import re
import sys

sys.path.insert(0, os.path.abspath(".."))

# Gallery examples run at build time: keep torch and OpenMP to the two cores of
# the build machines, without busy-waiting threads.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")

from sklearn_rfcnn import __version__

project = "sklearn-rfcnn"
author = "sklearn-rfcnn developers"
copyright = "sklearn-rfcnn developers"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

# api.rst includes _hear_api.rst (written below), which autosummary must scan
# too: an included file is not a document of its own.
autosummary_generate = ["api.rst", "_hear_api.rst"]
templates_path = ["_templates"]
numpydoc_show_class_members = False
# Methods inherited from torch (``forward`` of an autograd Function) or from
# scikit-learn keep their upstream docstrings, which cross-reference labels
# that only exist in those projects' own docs: document our docstrings only.
autodoc_inherit_docstrings = False
numpydoc_class_members_toctree = False
exclude_patterns = [
    "_build",
    "examples",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "sg_execution_times.rst",
    "_hear_api.rst",
]
html_theme = "pydata_sphinx_theme"
html_theme_options = {"navigation_with_keys": False}
html_static_path = []

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "torch": ("https://pytorch.org/docs/stable", None),
    "librosa": ("https://librosa.org/doc/latest", None),
    "skorch": ("https://skorch.readthedocs.io/en/stable", None),
    "optuna": ("https://optuna.readthedocs.io/en/stable", None),
}
# Offline, each fetch fails fast; do not wait long for a network that is absent.
intersphinx_timeout = 5


class _OfflineInventoryFilter(logging.Filter):
    """Drop intersphinx's "failed to reach any of the inventories" warning."""

    def filter(self, record):
        return not str(record.msg).startswith("failed to reach any of the inventories")


# Sphinx's loggers are named "sphinx." + module name.
for _name in (
    "sphinx.sphinx.ext.intersphinx",
    "sphinx.sphinx.ext.intersphinx._load",
):
    logging.getLogger(_name).addFilter(_OfflineInventoryFilter())

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "doc_module": ("sklearn_rfcnn",),
    "backreferences_dir": "generated/backreferences",
    # an example that fails is a build error
    "abort_on_example_error": True,
    "remove_config_comments": True,
}


def hear_api_rst():
    """The API section of :mod:`sklearn_rfcnn.hear`, or "" while it is absent.

    The HEAR module is optional in a checkout; ``api.rst`` includes what this
    returns (written to ``_hear_api.rst`` at configuration time).
    """
    import importlib
    import importlib.util

    if importlib.util.find_spec("sklearn_rfcnn.hear") is None:
        return ""
    hear = importlib.import_module("sklearn_rfcnn.hear")
    lines = [
        ".. currentmodule:: sklearn_rfcnn",
        "",
        "HEAR 2021 API",
        "-------------",
        "",
        ":mod:`sklearn_rfcnn.hear`: the HEAR benchmark's entry points over a",
        "pipeline saved with :func:`~sklearn_rfcnn.save_pipeline`.",
        "",
        ".. autosummary::",
        "   :toctree: generated/",
        "",
    ]
    constants = []
    for name in hear.__all__:
        obj = getattr(hear, name)
        if callable(obj):
            lines.append(f"   hear.{name}")
        else:
            constants.append(f"``sklearn_rfcnn.hear.{name}``")
    lines.append("")
    if constants:
        lines += [f"Constants: {', '.join(constants)}.", ""]
    return "\n".join(lines)


def _write_if_changed(path, text):
    old = open(path).read() if os.path.exists(path) else None
    if old != text:
        with open(path, "w") as f:
            f.write(text)


_write_if_changed(
    os.path.join(os.path.dirname(__file__), "_hear_api.rst"), hear_api_rst()
)


_TRAILING_UNDERSCORE_IN_SHAPE = re.compile(r"(?<=[ (])(\w+)_(?=[,)])")


def _escape_shape_attributes(app, what, name, obj, options, lines):
    """``(n_clips, n_outputs_)`` in a shape: escape the fitted attribute's
    trailing underscore, which reStructuredText would read as a link."""
    for i, line in enumerate(lines):
        if "_)" in line or "_," in line:
            lines[i] = _TRAILING_UNDERSCORE_IN_SHAPE.sub(r"\1\\_", line)


_UPSTREAM = ("sklearn.", "torch.", "skorch.", "optuna.", "builtins")


def _skip_upstream_members(app, what, name, obj, skip, options):
    """Document our own members, not those inherited from upstream classes.

    Class pages list inherited members (``fit`` lives on a private base), but
    not the ones scikit-learn, torch or skorch define (``score``,
    ``set_output``, ``nn.Module``'s methods, the generated ``set_*_request``
    of metadata routing): their docstrings cross-reference labels that exist
    only in those projects' docs.
    """
    if what != "class":
        return None
    if re.fullmatch(r"set_\w+_request", name):
        return True
    target = getattr(obj, "fget", obj)
    module = getattr(target, "__module__", None) or ""
    if module.startswith(_UPSTREAM):
        return True
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _escape_shape_attributes, priority=100)
    app.connect("autodoc-skip-member", _skip_upstream_members)
