"""The Slaney mel scale (librosa's default), in pure Python and lazy numpy.

Re-exported by :mod:`sklearn_rfcnn.receptive_field`, which describes receptive
fields in mel bands and Hz; nothing here imports torch or scikit-learn.
"""

import math

__all__ = ["hz_to_mel", "mel_frequencies", "mel_to_hz"]

_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(frequencies):
    """Hz to mels on the Slaney scale (librosa's default, ``htk=False``).

    Parameters
    ----------
    frequencies : float or np.ndarray [shape=(n,)], >= 0
        Frequencies in Hz.

    Returns
    -------
    mels : float or np.ndarray [shape=(n,)]

    Examples
    --------
    >>> round(float(hz_to_mel(1000.0)), 6)
    15.0
    >>> round(float(hz_to_mel(8000.0)), 4)
    45.2456
    """
    import numpy as np

    f = np.asanyarray(frequencies, dtype=float)
    lin = f / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log, lin)


def mel_to_hz(mels):
    """Mels (Slaney scale) back to Hz; the inverse of :func:`hz_to_mel`.

    Parameters
    ----------
    mels : float or np.ndarray [shape=(n,)]

    Returns
    -------
    frequencies : float or np.ndarray [shape=(n,)]

    Examples
    --------
    >>> round(float(mel_to_hz(15.0)), 6)
    1000.0
    """
    import numpy as np

    m = np.asanyarray(mels, dtype=float)
    lin = _F_SP * m
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log, lin)


def mel_frequencies(n_mels: int = 128, fmin: float = 0.0, fmax: float = 11025.0):
    """``n_mels`` frequencies equally spaced on the Slaney mel scale.

    Matches ``librosa.mel_frequencies(n_mels, fmin=fmin, fmax=fmax)``.  A mel
    filterbank of ``n`` bands uses ``mel_frequencies(n + 2, fmin, fmax)``:
    band *i* rises from point *i*, peaks at *i + 1* and falls to *i + 2*.

    Parameters
    ----------
    n_mels : int > 0
    fmin : float >= 0
    fmax : float > fmin

    Returns
    -------
    freqs : np.ndarray [shape=(n_mels,)]

    Examples
    --------
    >>> mel_frequencies(3, 0.0, 2000.0).round(1).tolist()
    [0.0, 836.1, 2000.0]
    """
    import numpy as np

    lo, hi = hz_to_mel(fmin), hz_to_mel(fmax)
    return mel_to_hz(np.linspace(lo, hi, n_mels))
