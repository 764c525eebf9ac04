"""Feature sets the accuracy benchmarks share (rendered once, then cached).

A feature set is ``n_clips`` clips of ``duration`` seconds rendered by
:func:`sklearn_rfcnn.datasets.make_instrument_mixtures` from one General-MIDI
SoundFont and put through the library's front end (``AudioLoader`` ->
``MelSpectrogram`` -> ``BandStandardizer`` fitted on the training part).
"""

import os
from pathlib import Path

import numpy as np

from sklearn_rfcnn import AudioLoader, BandStandardizer, MelSpectrogram
from sklearn_rfcnn.datasets import get_data_home, make_instrument_mixtures

__all__ = ["SOUNDFONTS", "available_soundfonts", "load_features", "load_spectrograms"]

#: name -> SoundFont path (None: the TimGM6mb bank pretty_midi ships).
#: Debian's packages: ``apt-get install csound-soundfont fluid-soundfont-gm``.
SOUNDFONTS = {
    "timgm6mb": None,
    "csound": "/usr/share/sounds/sf2/sf_GMbank.sf2",
    "fluidr3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
}


def available_soundfonts(names=None):
    """The requested SoundFonts present here; prints why the others are skipped."""
    names = list(SOUNDFONTS) if names is None else list(names)
    found = []
    for name in names:
        path = SOUNDFONTS[name]
        if path is not None and not os.path.exists(path):
            print(
                f"skipping SoundFont {name!r}: {path} is missing "
                "(apt-get install csound-soundfont fluid-soundfont-gm)"
            )
            continue
        found.append(name)
    return found


def load_spectrograms(
    soundfont,
    *,
    n_clips=900,
    duration=5.0,
    n_mels=128,
    n_fft=1024,
    random_state=10,
    verbose=True,
):
    """Unstandardised mel spectrograms, tags, tag names and the audio's Bunch.

    Returns
    -------
    S : ndarray of shape (n_clips, n_mels, n_frames)
    Y : ndarray of shape (n_clips, n_tags)
    names : ndarray of str
    data : Bunch from ``make_instrument_mixtures`` (``waveforms``, ``sr``)
    """
    home = Path(get_data_home()) / "bench_features"
    key = f"{soundfont}_n{n_clips}_d{duration:g}_m{n_mels}_f{n_fft}_s{random_state}"
    path = home / f"{key}.npz"
    data = make_instrument_mixtures(
        n_clips=n_clips,
        duration=duration,
        random_state=random_state,
        soundfont=SOUNDFONTS[soundfont],
        verbose=verbose,
    )
    if not path.exists():
        mel = MelSpectrogram(n_mels=n_mels, n_fft=n_fft, n_jobs=2)
        waves = AudioLoader(duration=duration).fit_transform(list(data.waveforms))
        S = mel.fit_transform(waves)
        home.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        names = np.asarray(data.target_names, dtype=str)
        np.savez(tmp, S=S, Y=data.target, names=names)
        os.replace(tmp, path)
    with np.load(path) as f:
        return f["S"], f["Y"], f["names"], data


def load_features(soundfont, *, n_train=630, **kwargs):
    """Standardised mel spectrograms and tags of one SoundFont, train/test split.

    Parameters
    ----------
    soundfont : str
        A key of :data:`SOUNDFONTS`.
    n_train : int, default=630
        The first ``n_train`` clips train (and fit the standardiser); the rest
        are the test part.
    **kwargs
        ``n_clips``, ``duration``, ``n_mels``, ``n_fft``, ``random_state``,
        ``verbose``: as :func:`load_spectrograms` (same defaults).

    Returns
    -------
    X_train, Y_train, X_test, Y_test, target_names
    """
    S, Y, names, _ = load_spectrograms(soundfont, **kwargs)
    norm = BandStandardizer().fit(S[:n_train])
    return (
        norm.transform(S[:n_train]),
        Y[:n_train],
        norm.transform(S[n_train:]),
        Y[n_train:],
        names,
    )
