"""Datasets: the embedded instrument-mixture dataset and loaders of local copies.

:func:`make_instrument_mixtures` renders the library's default tagging dataset
from a General-MIDI SoundFont (no download).  The ``load_*`` functions read
local copies of public datasets in their official layouts and never download
(one module per data set); :func:`load_manifest` reads a CSV of audio paths
and labels; :func:`find_audio_files` is the audio-file filter they all use;
:func:`multilabel_train_test_split` splits a tag matrix so that every tag can
be evaluated; :class:`SpectrogramStore` keeps the spectrograms of a data set
larger than memory on disk and reads them back clip by clip or crop by crop.
"""

from sklearn_rfcnn.datasets._base import clear_data_home, get_data_home
from sklearn_rfcnn.datasets._common import (
    AUDIO_EXTENSIONS,
    find_audio_files,
    is_audio_file,
)
from sklearn_rfcnn.datasets._folder import load_audio_folder
from sklearn_rfcnn.datasets._instruments import (
    INSTRUMENT_TAGS,
    make_instrument_mixtures,
)
from sklearn_rfcnn.datasets._jamendo import load_mtg_jamendo
from sklearn_rfcnn.datasets._manifest import load_manifest
from sklearn_rfcnn.datasets._openmic import load_openmic
from sklearn_rfcnn.datasets._split import multilabel_train_test_split
from sklearn_rfcnn.datasets._store import SpectrogramStore

__all__ = [
    "AUDIO_EXTENSIONS",
    "INSTRUMENT_TAGS",
    "SpectrogramStore",
    "clear_data_home",
    "find_audio_files",
    "get_data_home",
    "is_audio_file",
    "load_audio_folder",
    "load_manifest",
    "load_mtg_jamendo",
    "load_openmic",
    "make_instrument_mixtures",
    "multilabel_train_test_split",
]
