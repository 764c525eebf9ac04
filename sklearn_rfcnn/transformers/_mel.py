"""Mel spectrograms of waveforms: the paper's perceptual front end.

The numerical recipe (``scale="perceptual"``) is the one of the CP-ResNet
reference code (``processor_d18``): STFT power, A-weighted dB
(:func:`librosa.perceptual_weighting`), then a Slaney mel projection of that
dB spectrogram, with no further log.  ``backend="librosa"`` computes it clip
by clip with :mod:`scipy.fft` and a sparse filterbank; ``backend="torch"``
computes the same numbers with :func:`torch.stft` (on a GPU when one is
present).
"""

import functools
from numbers import Integral, Real

import numpy as np
import scipy.fft
import scipy.signal
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.transformers._spectral import (
    AMIN,
    TOP_DB,
    a_weighting,
    mel_filterbank,
)
from sklearn_rfcnn.transformers._validation import (
    ParamValidationMixin,
    check_signals,
    chunk_slices,
    progress_bar,
    thread_map,
)
from sklearn_rfcnn.utils._docstrings import fill_doc
from sklearn_rfcnn.utils._parallel import distributed_backend
from sklearn_rfcnn.utils._sklearn_compat import (
    Interval,
    StrOptions,
    _fit_context,
)

__all__ = ["MelSpectrogram"]

#: The ``Parameters`` of ``fit`` and ``fit_transform`` (docstrings).
_FIT_PARAMETERS_DOC = """
Parameters
----------
X : array-like of shape (n_clips, n_samples) or (n_clips, n_channels, \
n_samples), or list of 1-D/2-D arrays
    Waveforms at ``sr`` Hz.
y : None
    Ignored.
"""

#: Samples per chunk of clips handed to one thread (librosa backend). Each
#: clip of a chunk is computed on its own (the working memory is one clip's
#: STFT per thread), so small chunks only balance the threads better.
_CHUNK_SAMPLES = 2**18
#: Samples per batch of the torch backend (batched STFT; bounds its memory).
_TORCH_CHUNK_SAMPLES = 2**20


_DB_PER_LN = np.float32(10.0 / np.log(10.0))


def _to_db(S, amin=AMIN, top_db=TOP_DB):
    """``power_to_db(S, ref=1.0, amin, top_db)`` with the top_db floor per 2-D slice.

    librosa's ``power_to_db`` takes the maximum over the whole array; applied
    to a batch that would couple clips, so the maximum here is taken over the
    last two axes (one spectrogram) only. ``10 * log10(x)`` is computed as
    ``(10 / ln 10) * ln(x)``, which numpy vectorises about three times faster
    (same value to float32 rounding).
    """
    log_spec = np.maximum(S, amin, dtype=S.dtype)
    np.log(log_spec, out=log_spec)
    log_spec *= _DB_PER_LN
    floor = log_spec.max(axis=(-2, -1), keepdims=True) - top_db
    np.maximum(log_spec, floor, out=log_spec)
    return log_spec


@functools.lru_cache(maxsize=16)
def _hann(n_fft):
    """librosa's STFT window: periodic Hann (``get_window("hann", fftbins=True)``)."""
    window = scipy.signal.get_window("hann", n_fft, fftbins=True).astype(np.float32)
    window.setflags(write=False)
    return window


#: Bytes of windowed frames transformed at once: a block of frames and its
#: spectrum stay in a core's L2 cache (about 2x faster on a busy machine than
#: one pass over a whole clip; the numbers are the same).
_STFT_BLOCK_BYTES = 2**18


def _stft_magnitude(y, n_fft, hop_length):
    """``np.abs(librosa.stft(y, center=True, pad_mode="reflect"))`` of one clip.

    The same frames, window and FFT size as librosa, computed with
    :mod:`scipy.fft` (several times faster than numpy's FFT that librosa
    uses) a block of frames at a time, bin-major as librosa:
    ``(n_fft // 2 + 1, n_frames)`` float32, C-contiguous, so the mel
    projection reads it without a transposed copy.

    Frames come from the whole signal reflect-padded by ``n_fft // 2`` on both
    sides (the textbook definition, and librosa < 0.10). librosa >= 0.10 pads
    head and tail separately, which gives the same frames whenever
    ``hop_length <= n_fft``; with gaps between frames (``hop_length > n_fft``)
    its last frame differs.
    """
    pad = n_fft // 2
    padded = np.pad(y, pad, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    window = _hann(n_fft)[:, np.newaxis]
    out = np.empty((n_fft // 2 + 1, frames.shape[0]), dtype=np.float32)
    step = max(1, _STFT_BLOCK_BYTES // (4 * n_fft))
    for start in range(0, frames.shape[0], step):
        # (n_fft, block) view of frame-major data: the FFT along axis 0
        # gives bin-major columns of the output
        windowed = frames[start : start + step].T * window
        D = scipy.fft.rfft(windowed, axis=0, overwrite_x=True)
        np.abs(D, out=out[:, start : start + step])
    return out


def _stft_power(y, n_fft, hop_length):
    """``np.abs(librosa.stft(y, center=True, pad_mode="reflect")) ** 2`` of one clip."""
    S = _stft_magnitude(y, n_fft, hop_length)
    np.square(S, out=S)
    return S


@functools.lru_cache(maxsize=16)
def _perceptual_tables(sr, n_fft, n_mels, fmin, fmax):
    """Sparse mel basis and the mel projection of the A-weighting (float32)."""
    _, sparse_basis = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    offset = (sparse_basis @ a_weighting(sr, n_fft)).astype(np.float32)
    offset.setflags(write=False)
    return sparse_basis, offset


#: ``sqrt(amin)`` and ``10 ** (-top_db / 20)``: the dB floors on magnitudes.
_SQRT_AMIN = np.float32(np.sqrt(AMIN))
_TOP_DB_RATIO = np.float32(10.0 ** (-TOP_DB / 20.0))


def _perceptual_mel(M, sparse_basis, offset, out):
    """``mel @ perceptual_weighting(M ** 2, ref=1, amin, top_db)`` into ``out``.

    ``M`` is an STFT magnitude ``(n_bins, n_frames)``, overwritten. The dB
    spectrogram ``max(10 log10(max(M**2, amin)), its max - top_db)`` is
    ``(20 / ln 10) * ln(max(M, sqrt(amin), max(M) * 10 ** (-top_db / 20)))``:
    one clamp and one log per bin. Everything after the log is linear, so the
    dB factor and the A-weighting are applied after the projection, on the
    ``n_mels`` rows: ``mel @ (c * L + a) = c * (mel @ L) + mel @ a``. Rounding
    differs from the per-bin order by about 1e-5 dB.
    """
    np.maximum(M, max(_SQRT_AMIN, M.max() * _TOP_DB_RATIO), out=M)
    np.log(M, out=M)
    out[...] = sparse_basis @ M
    out *= 2 * _DB_PER_LN
    out += offset


def _mel_librosa(Y, *, sr, n_fft, hop_length, n_mels, fmin, fmax, scale):
    """Mel spectrograms of a batch ``Y`` (n, n_samples) float32 → (n, n_mels, T).

    One clip at a time: its STFT (a few MB) stays in cache, and the bin-major
    spectrogram feeds the sparse projection without a transposed copy.
    """
    n_frames = 1 + (Y.shape[-1] + 2 * (n_fft // 2) - n_fft) // hop_length
    out = np.empty((Y.shape[0], n_mels, n_frames), dtype=np.float32)
    if scale == "perceptual":
        sparse_basis, offset = _perceptual_tables(sr, n_fft, n_mels, fmin, fmax)
        for y, o in zip(Y, out):
            M = _stft_magnitude(y, n_fft, hop_length)
            _perceptual_mel(M, sparse_basis, offset, o)
        return out
    _, sparse_basis = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    for y, o in zip(Y, out):
        o[...] = sparse_basis @ _stft_power(y, n_fft, hop_length)
    if scale == "db":
        out = _to_db(out)
    return out


def _pad_short(Y, n_fft):
    """Zero-pad clips shorter than ``n_fft`` at the end to ``n_fft`` samples."""
    if Y.shape[-1] >= n_fft:
        return Y
    pad = [(0, 0)] * (Y.ndim - 1) + [(0, n_fft - Y.shape[-1])]
    return np.pad(Y, pad)


class MelSpectrogram(
    ParamValidationMixin, TransformerMixin, BaseEstimator, auto_wrap_output_keys=None
):
    """Mel spectrograms of waveforms, as in the CP-ResNet papers.

    A stateless transformer: ``fit`` only validates the parameters and records
    ``n_features_in_`` (the clip length) for 2-D input.

    Parameters
    ----------
    sr : int > 0, default=22050
        Sampling rate of the input waveforms in Hz.
    n_fft : int > 0, default=2048
        FFT size (and Hann window length).
    hop_length : int > 0, default=512
        Samples between frames.
    n_mels : int > 0, default=256
        Mel bands; at most ``n_fft // 2 + 1``.
    fmin : float >= 0, default=0.0
        Lowest mel-band edge in Hz.
    fmax : float > 0 or None, default=None
        Highest mel-band edge in Hz, at most ``sr / 2`` (``None`` means ``sr / 2``).
    scale : {"perceptual", "db", "power"}, default="perceptual"
        - ``"perceptual"``: the paper's front end. STFT power ``|X|**2`` →
          ``perceptual_weighting(|X|**2, fft_freqs, ref=1.0, amin=1e-10,
          top_db=80)`` (A-weighted dB) → Slaney mel projection of that dB
          spectrogram (no further log).
        - ``"db"``: log-mel, ``power_to_db(mel_power, ref=1.0, amin=1e-10,
          top_db=80)``. The reference is absolute, so loudness differences
          between clips survive.
        - ``"power"``: mel power spectrogram.

        The 80 dB floor is taken below the maximum of each spectrogram (each
        clip, and each channel of a multichannel clip), never across a batch.
    backend : {"librosa", "torch"}, default="librosa"
        ``"librosa"`` computes with librosa's STFT and a sparse filterbank in
        float32. ``"torch"`` uses batched :func:`torch.stft` in float32 on CUDA
        when it is available, else on CPU (torch's intra-op threads); it
        matches librosa within 0.01 dB (measured: below 1e-3 dB). On CPU the
        librosa backend is the faster one (``benchmarks/bench_frontend.py``);
        the torch backend pays off on a GPU.
    n_jobs : int or None, default=None
        Threads working on chunks of clips (FFT and matrix products release
        the GIL). ``None`` means 1 unless in a :func:`joblib.parallel_config`
        context; ``-1`` means all processors.
    verbose : int >= 0, default=0
        With ``verbose > 0``, :meth:`transform` shows a tqdm progress bar on
        stderr, advanced as each chunk of clips is done; ``0`` prints nothing.

    Attributes
    ----------
    n_features_in_ : int
        Samples per clip (2-D input) or channels (3-D input) seen in ``fit``;
        absent after fitting on a list of variable-length clips.

    See Also
    --------
    AudioLoader : Decode audio files to the waveforms this transformer takes.
    BandStandardizer : Per-band z-score of the spectrograms.

    Notes
    -----
    Input forms and outputs (float32):

    - ``(n_clips, n_samples)`` → ``(n_clips, n_mels, n_frames)``;
    - ``(n_clips, n_channels, n_samples)`` → ``(n_clips, n_channels, n_mels,
      n_frames)``, each channel its own spectrogram;
    - a list of 1-D ``(n_samples_i,)`` (or 2-D ``(n_channels, n_samples_i)``)
      arrays → a list of ``(n_mels, n_frames_i)`` (or ``(n_channels, n_mels,
      n_frames_i)``) arrays.

    The STFT is librosa's (computed with :mod:`scipy.fft`, same frames):
    periodic Hann window, ``center=True`` with **reflect** padding (as the
    reference code; librosa >= 0.10 defaults to zero padding), so
    ``n_frames = 1 + n_samples // hop_length`` for even ``n_fft`` (see
    :meth:`n_frames`). Clips shorter
    than ``n_fft`` are first zero-padded at the end to ``n_fft`` samples.
    Integer input is cast to float32 without rescaling; to decode integer
    PCM to ``[-1, 1]`` use :class:`AudioLoader`. NaN/inf or empty clips raise
    :class:`~sklearn_rfcnn.exceptions.DataError` naming the clip.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_rfcnn.transformers import MelSpectrogram
    >>> X = np.random.default_rng(0).standard_normal((2, 8000)).astype("float32")
    >>> mel = MelSpectrogram(sr=8000, n_fft=256, hop_length=128, n_mels=32)
    >>> mel.fit_transform(X).shape
    (2, 32, 63)
    >>> [s.shape for s in mel.transform([X[0], X[1, :4000]])]
    [(32, 63), (32, 32)]
    """

    _parameter_constraints = {
        "sr": [Interval(Integral, 1, None, closed="left")],
        "n_fft": [Interval(Integral, 1, None, closed="left")],
        "hop_length": [Interval(Integral, 1, None, closed="left")],
        "n_mels": [Interval(Integral, 1, None, closed="left")],
        "fmin": [Interval(Real, 0, None, closed="left")],
        "fmax": [Interval(Real, 0, None, closed="neither"), None],
        "scale": [StrOptions({"perceptual", "db", "power"})],
        "backend": [StrOptions({"librosa", "torch"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        sr=22050,
        n_fft=2048,
        hop_length=512,
        n_mels=256,
        fmin=0.0,
        fmax=None,
        scale="perceptual",
        backend="librosa",
        n_jobs=None,
        verbose=0,
    ):
        self.sr = sr
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.fmin = fmin
        self.fmax = fmax
        self.scale = scale
        self.backend = backend
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _check_params_extra(self):
        n_bins = self.n_fft // 2 + 1
        if self.n_mels > n_bins:
            raise ParameterError(
                f"n_mels={self.n_mels} must be <= n_fft // 2 + 1 = {n_bins} (more "
                "mel bands than FFT bins leaves bands empty); lower n_mels or "
                "raise n_fft."
            )
        nyquist = self.sr / 2
        if self.fmax is not None and self.fmax > nyquist:
            raise ParameterError(
                f"fmax={self.fmax} must be <= sr / 2 = {nyquist:g} Hz; lower fmax "
                "or pass fmax=None for the Nyquist frequency."
            )
        fmax = nyquist if self.fmax is None else self.fmax
        if self.fmin >= fmax:
            raise ParameterError(
                f"fmin={self.fmin} must be below fmax ({fmax:g} Hz); lower fmin."
            )

    @_fit_context(prefer_skip_nested_validation=True)
    @fill_doc(fit_parameters=_FIT_PARAMETERS_DOC)
    def fit(self, X, y=None):
        """Validate the parameters and record the input size.

        %(fit_parameters)s

        Returns
        -------
        self : MelSpectrogram
        """
        self._check_input(X, reset=True)
        return self

    def transform(self, X):
        """Compute the mel spectrograms.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples) or (n_clips, n_channels, \
n_samples), or list of 1-D/2-D arrays
            Waveforms at ``sr`` Hz.

        Returns
        -------
        S : np.ndarray of float32 of shape (n_clips, n_mels, n_frames) or \
(n_clips, n_channels, n_mels, n_frames), or list of arrays
            One spectrogram per clip (see Notes).
        """
        check_is_fitted(self)
        self._validate_params()
        return self._transform_checked(*self._check_input(X, reset=False))

    @_fit_context(prefer_skip_nested_validation=True)
    @fill_doc(fit_parameters=_FIT_PARAMETERS_DOC)
    def fit_transform(self, X, y=None):
        """Fit to ``X`` and return its mel spectrograms (``X`` is checked once).

        The same as ``fit(X).transform(X)``.

        %(fit_parameters)s

        Returns
        -------
        S : np.ndarray of float32 or list of arrays
            As :meth:`transform`.
        """
        return self._transform_checked(*self._check_input(X, reset=True))

    def _transform_checked(self, kind, data):
        if kind == "list":
            return self._transform_list(data)
        lead = data.shape[:-1]
        flat = data.reshape(-1, data.shape[-1])
        out = self._transform_batch(flat)
        return out.reshape(*lead, *out.shape[1:])

    def n_frames(self, n_samples):
        """Frames of the output for a clip of ``n_samples`` samples.

        Parameters
        ----------
        n_samples : int >= 1

        Returns
        -------
        n_frames : int

        Examples
        --------
        >>> MelSpectrogram().n_frames(220500)
        431
        """
        n_padded = max(int(n_samples), self.n_fft) + 2 * (self.n_fft // 2)
        return 1 + (n_padded - self.n_fft) // self.hop_length

    # -- helpers -----------------------------------------------------------------

    def _check_input(self, X, *, reset):
        return check_signals(
            self,
            X,
            reset=reset,
            what="waveform",
            strings_hint="decode the files first, e.g. make_pipeline("
            "AudioLoader(...), MelSpectrogram(...)).",
            max_item_ndim=2,
            max_ndim=3,
            accepted="(n_clips, n_samples) or (n_clips, n_channels, n_samples) "
            "waveforms",
        )

    def _settings(self):
        return dict(
            sr=self.sr,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            fmin=float(self.fmin),
            fmax=None if self.fmax is None else float(self.fmax),
            scale=self.scale,
        )

    def _compute(self):
        """The function turning a float32 batch (n, n_samples) into spectrograms."""
        settings = self._settings()
        if self.backend == "torch":
            from sklearn_rfcnn.transformers._mel_torch import TorchMel

            torch_mel = TorchMel(**settings)
            return lambda Y: torch_mel(_pad_short(Y, self.n_fft))
        return lambda Y: _mel_librosa(_pad_short(Y, self.n_fft), **settings)

    def _transform_batch(self, Y):
        n_clips, n_samples = Y.shape
        compute = self._compute()
        out = np.empty(
            (n_clips, self.n_mels, self.n_frames(n_samples)), dtype=np.float32
        )

        budget = _TORCH_CHUNK_SAMPLES if self.backend == "torch" else _CHUNK_SAMPLES
        slices = chunk_slices(n_clips, max(n_samples, self.n_fft), budget)
        if distributed_backend() is None:
            # local threads write their chunks straight into ``out``

            def work(sl):
                out[sl] = compute(Y[sl])
                return sl

            done = thread_map(work, slices, self.n_jobs)
        else:
            # a cluster's workers get one chunk each and send its result back
            chunks = thread_map(compute, (Y[sl] for sl in slices), self.n_jobs)
            done = _written(out, slices, chunks)
        with self._progress(n_clips) as bar:
            for sl in done:
                bar.update(sl.stop - sl.start)
        return out

    def _transform_list(self, items):
        compute = self._compute()

        def work(x):
            lead = x.shape[:-1]
            spec = compute(x.reshape(-1, x.shape[-1]))
            return spec.reshape(*lead, *spec.shape[1:])

        specs = thread_map(work, items, self.n_jobs)
        out = []
        with self._progress(len(items)) as bar:
            for spec in specs:
                out.append(spec)
                bar.update(1)
        return out

    def _progress(self, total):
        return progress_bar(total, verbose=self.verbose, desc="MelSpectrogram")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _written(out, slices, chunks):
    """Write each computed chunk into ``out[slice]``; yield the slices done."""
    for sl, chunk in zip(slices, chunks):
        out[sl] = chunk
        yield sl
