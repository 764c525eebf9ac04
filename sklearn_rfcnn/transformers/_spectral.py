"""Spectral constants and tables both mel backends share.

The librosa backend (:mod:`~sklearn_rfcnn.transformers._mel`) and the torch
backend (:mod:`~sklearn_rfcnn.transformers._mel_torch`) compute the same
numbers from the same tables: the dB floor (``AMIN``) and dynamic range
(``TOP_DB``), librosa's A-weighting per FFT bin and the Slaney mel
filterbank.  Both backends import this module and neither imports the other
at module level, so there is no import cycle.  librosa is imported only when
a table is first built; tables are cached per setting.
"""

import functools

import numpy as np
import scipy.sparse

__all__ = ["AMIN", "TOP_DB", "a_weighting", "mel_filterbank"]

#: Floor of the power spectrogram before the log (librosa's ``amin``).
AMIN = 1e-10
#: Dynamic range kept below each spectrogram's maximum, in dB.
TOP_DB = 80.0


@functools.lru_cache(maxsize=16)
def mel_filterbank(sr, n_fft, n_mels, fmin, fmax):
    """Slaney mel filterbank (librosa's default), dense float32 and sparse CSR.

    Parameters
    ----------
    sr : int > 0
        Sampling rate in Hz.
    n_fft : int > 0
        FFT size.
    n_mels : int > 0
        Mel bands.
    fmin : float >= 0
        Lowest band edge in Hz.
    fmax : float or None
        Highest band edge in Hz (``None``: ``sr / 2``).

    Returns
    -------
    basis : np.ndarray of float32 [shape=(n_mels, n_fft // 2 + 1)]
        Read-only dense filterbank.
    sparse_basis : scipy.sparse.csr_array
        The same matrix in CSR form.

    Examples
    --------
    >>> basis, sparse_basis = mel_filterbank(8000, 64, 8, 0.0, None)
    >>> basis.shape, basis.dtype, sparse_basis.shape
    ((8, 33), dtype('float32'), (8, 33))
    """
    import librosa

    basis = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float32
    )
    basis.setflags(write=False)
    return basis, scipy.sparse.csr_array(basis)


@functools.lru_cache(maxsize=16)
def a_weighting(sr, n_fft):
    """A-weighting in dB per FFT bin, as :func:`librosa.perceptual_weighting` adds.

    Parameters
    ----------
    sr, n_fft : int > 0
        Sampling rate in Hz and FFT size, as for :func:`mel_filterbank`.

    Returns
    -------
    offset : np.ndarray of float64 [shape=(n_fft // 2 + 1, 1)]
        Read-only dB offsets, one per FFT bin (a column, to add to
        ``(n_bins, n_frames)`` spectrograms).

    Examples
    --------
    >>> a_weighting(8000, 64).shape
    (33, 1)
    """
    import librosa

    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    # librosa 0.11 takes log10(0) at 0 Hz (RuntimeWarning) and clips it to
    # min_db=-80; the result is finite, so the warning is noise here.
    with np.errstate(divide="ignore"):
        offset = librosa.frequency_weighting(freqs, kind="A")
    offset = offset.astype(np.float64).reshape(-1, 1)
    offset.setflags(write=False)
    return offset
