"""Sphinx configuration for sklearn-rfcnn (numpydoc + sphinx-gallery + pydata theme)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from sklearn_rfcnn import __version__

project = "sklearn-rfcnn"
author = "sklearn-rfcnn developers"
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

autosummary_generate = True
numpydoc_show_class_members = False
exclude_patterns = ["_build", "examples", "auto_examples/*.ipynb", "auto_examples/*.py"]
html_theme = "pydata_sphinx_theme"

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "torch": ("https://pytorch.org/docs/stable", None),
    "librosa": ("https://librosa.org/doc/latest", None),
    "skorch": ("https://skorch.readthedocs.io/en/stable", None),
    "optuna": ("https://optuna.readthedocs.io/en/stable", None),
}

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "reference_url": {"sklearn_rfcnn": None},
}
