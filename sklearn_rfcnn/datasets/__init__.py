"""Datasets: the embedded instrument-mixture dataset and loaders of local copies.

:func:`make_instrument_mixtures` renders the library's default tagging dataset
from a General-MIDI SoundFont (no download).  The ``load_*`` functions read
local copies of public datasets in their official layouts and never download;
:func:`load_manifest` reads a CSV of audio paths and labels.
"""

from sklearn_rfcnn.datasets._base import clear_data_home, get_data_home
from sklearn_rfcnn.datasets._instruments import (
    INSTRUMENT_TAGS,
    make_instrument_mixtures,
)
from sklearn_rfcnn.datasets._loaders import (
    AUDIO_EXTENSIONS,
    load_audio_folder,
    load_manifest,
    load_mtg_jamendo,
    load_openmic,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "INSTRUMENT_TAGS",
    "clear_data_home",
    "get_data_home",
    "load_audio_folder",
    "load_manifest",
    "load_mtg_jamendo",
    "load_openmic",
    "make_instrument_mixtures",
]
