"""Decode audio files (or take waveforms) into fixed- or variable-length clips."""

import os
import stat
import struct
import warnings
from numbers import Integral, Real

import numpy as np
import soundfile as sf
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from sklearn_rfcnn.exceptions import (
    AudioDecodeError,
    DataError,
    InputTypeError,
    RFCNNError,
    RFCNNWarning,
    SkippedItemsWarning,
)
from sklearn_rfcnn.transformers._validation import (
    ParamValidationMixin,
    progress_bar,
    thread_map,
)
from sklearn_rfcnn.utils._checks import is_stringlike as _is_path
from sklearn_rfcnn.utils._sklearn_compat import Interval, StrOptions, _fit_context

__all__ = ["AudioLoader"]

#: Resampler, as :func:`librosa.load`'s default.
RES_TYPE = "soxr_hq"


#: Audio whose header declares a lower rate is refused before it is decoded
#: or resampled (a header claiming 1 Hz would multiply the work by the target
#: rate); ``rfcnn --sr`` takes no lower value either.
MIN_SAMPLE_RATE = 1000
#: A header declaring more samples than this per byte of the file is refused
#: before decoding (digital silence in FLAC, the most compact case, packs a
#: few hundred samples in a byte).
MAX_SAMPLES_PER_BYTE = 4096


def _pcm_to_float(y, index):
    """Integer PCM → float32 in [-1, 1) (soundfile's convention); floats cast."""
    kind, size = y.dtype.kind, y.dtype.itemsize
    if kind == "f":
        return y.astype(np.float32, copy=False)
    if kind == "i" and size in (1, 2, 4):
        return (y / float(2 ** (8 * size - 1))).astype(np.float32)
    if kind == "u" and size == 1:
        return ((y.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    raise InputTypeError(
        f"X[{index}] has dtype {y.dtype}, which is not an audio sample format; "
        "pass float waveforms in [-1, 1], or int8/int16/int32 (or uint8) PCM, "
        "which is rescaled to [-1, 1]."
    )


#: Containers whose 16-bit PCM is read as int16 and scaled here: libsndfile's
#: float conversion is the same ``x / 32768`` (exact), only about four times
#: slower. (FLAC decodes no faster as int16, so it is read as float32.)
_INT16_FORMATS = frozenset({"WAV", "WAVEX", "AIFF"})


def _to_float(y, scale, mono):
    """(channels, samples) float32 or int16 → float32, scaled, mixed down if ``mono``.

    The mixdown is the channel mean (:func:`librosa.to_mono`, ``np.mean`` over
    the channels), computed one channel at a time: ``np.mean`` over the
    channel axis of a file read (a transposed, interleaved buffer) is several
    times slower. The channel sum of 16-bit PCM is exact in float32, and
    scaling by ``2 ** -15`` is exact, so the int16 path gives the same floats
    as scaling first.
    """
    if mono and y.shape[0] > 1:
        out = y[0].astype(np.float32)
        for channel in y[1:]:
            out += channel
        if scale != 1:
            out *= np.float32(scale)
        out /= np.float32(y.shape[0])
        return out[np.newaxis]
    if scale != 1:
        return np.multiply(y, np.float32(scale), dtype=np.float32, order="C")
    return np.ascontiguousarray(y, dtype=np.float32)


def _resample(y, orig_sr, target_sr):
    """``librosa.resample(y, orig_sr, target_sr, res_type="soxr_hq")``, row by row.

    soxr called directly (it releases the GIL), without librosa's second
    finiteness pass and ``apply_along_axis``; the same numbers, including
    librosa's output length ``ceil(n * target_sr / orig_sr)``.
    """
    try:
        import soxr
    except ImportError:  # pragma: no cover - soxr comes with librosa >= 0.10
        import librosa

        return librosa.resample(
            y, orig_sr=orig_sr, target_sr=target_sr, res_type=RES_TYPE
        )
    n_out = int(np.ceil(y.shape[-1] * (float(target_sr) / orig_sr)))
    rows = [soxr.resample(ch, orig_sr, target_sr, quality=RES_TYPE) for ch in y]
    if len(rows) == 1 and rows[0].shape[-1] == n_out:
        return rows[0][np.newaxis]
    out = np.zeros((len(rows), n_out), dtype=np.float32)
    for row, res in zip(out, rows):
        n = min(n_out, res.shape[-1])
        row[:n] = res[:n]
    return out


#: WAV sample formats whose header's block align is the size of one frame.
_FRAME_SUBTYPES = frozenset(
    {"PCM_U8", "PCM_S8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"}
    | {"ULAW", "ALAW"}
)


def _wav_declared_frames(path):
    """Frames the ``data`` chunk of a RIFF/WAVE header declares, or None.

    None when the file is not a plain RIFF (or RIFX) WAVE file, or when the
    header leaves the length open (a size of 0 or 0xFFFFFFFF, as streaming
    writers do).  libsndfile reads a file shorter than its header says
    without complaint, counting only the frames present.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return None
            order = "<" if head[:4] == b"RIFF" else ">"
            block_align = None
            for _ in range(64):  # chunks before "data": fmt, fact, LIST, ...
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                size = struct.unpack(order + "I", chunk[4:])[0]
                if chunk[:4] == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block_align
                if chunk[:4] == b"fmt ":
                    fmt = fh.read(size)
                    if len(fmt) < 14:
                        return None
                    block_align = struct.unpack(order + "H", fmt[12:14])[0]
                    fh.seek(size & 1, os.SEEK_CUR)
                else:
                    fh.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None
    return None


def _truncated_wav(path):
    """``(path, frames, declared, sr)`` if a WAV file is shorter than its header."""
    declared = _wav_declared_frames(path)
    if declared is None:
        return None
    try:
        info = sf.info(path)
    except (sf.SoundFileError, RuntimeError, OSError):
        return None
    if (
        info.format in ("WAV", "WAVEX")
        and info.subtype in _FRAME_SUBTYPES
        and info.frames < declared
    ):
        return path, info.frames, declared, info.samplerate
    return None


def _fix_length(y, size, pad_mode):
    """Crop or pad the last axis of ``y`` (channels, samples) to ``size``."""
    n = y.shape[-1]
    if n >= size:
        return y[:, :size]
    return np.pad(y, [(0, 0), (0, size - n)], mode=pad_mode)


class AudioLoader(
    ParamValidationMixin, TransformerMixin, BaseEstimator, auto_wrap_output_keys=None
):
    """Decode audio files (or take waveforms) into clips at one sampling rate.

    The first step of a pipeline: file paths in, float32 waveforms out.
    Stateless: ``fit`` only validates the parameters and the input's structure.

    Parameters
    ----------
    sr : int > 0, default=22050
        Target sampling rate in Hz; files at other rates are resampled with
        soxr (``"soxr_hq"``, as :func:`librosa.load`).
    mono : bool, default=True
        Mix multichannel audio down to one channel (the channel mean, as
        librosa). With ``mono=False`` channels are kept.
    duration : float > 0 or None, default=None
        Clip length in seconds. Clips are cut to ``round(duration * sr)``
        samples starting at ``offset``; shorter ones are padded at the end (see
        ``pad_mode``) and a 2-D/3-D array is returned. ``None`` keeps each
        clip's own length and returns a list.
    offset : float >= 0, default=0.0
        Start reading this many seconds into each clip.
    pad_mode : {"constant", "wrap", "reflect"}, default="constant"
        How clips shorter than ``duration`` are padded at the end:
        ``"constant"`` with silence (zeros), ``"wrap"`` by looping the clip,
        ``"reflect"`` by mirroring it (:func:`numpy.pad` modes).
    n_jobs : int or None, default=None
        Threads decoding files in parallel (decoding and resampling release
        the GIL). ``None`` means 1 unless in a :func:`joblib.parallel_config`
        context; ``-1`` means all processors.
    on_error : {"raise", "skip"}, default="raise"
        What to do with a clip that cannot be loaded (missing, corrupt,
        empty, NaN/inf samples). ``"raise"`` raises
        :class:`~sklearn_rfcnn.exceptions.AudioDecodeError` (or another
        :class:`~sklearn_rfcnn.exceptions.DataError`) naming the item.
        ``"skip"`` drops it and warns with a
        :class:`~sklearn_rfcnn.exceptions.SkippedItemsWarning` listing index,
        path and reason of every skipped item (also available as the
        warning's ``skipped`` attribute). Use :meth:`load` to get the kept
        indices, e.g. to subset ``y``; in a supervised Pipeline, skipping
        would misalign ``X`` and ``y``, so keep ``"raise"`` there.
    verbose : int >= 0, default=0
        With ``verbose > 0``, :meth:`transform` and :meth:`load` show a tqdm
        progress bar over the clips on stderr; ``0`` prints nothing.

    See Also
    --------
    MelSpectrogram : Turn the waveforms into spectrograms.

    Notes
    -----
    ``X`` is a 1-D sequence (list, tuple, 1-D array, pandas Series) whose items
    are either file paths (``str`` or path-like; WAV, FLAC, OGG/Vorbis, Opus
    and MP3 through soundfile, no ffmpeg) or waveform arrays. A waveform is
    1-D ``(n_samples,)`` or 2-D ``(n_channels, n_samples)`` and is **assumed to
    be at** ``sr`` **already** (it is not resampled). Float waveforms are taken
    as they are; int8/int16/int32 PCM is rescaled to [-1, 1) by
    ``2 ** (bits - 1)`` and uint8 by ``(x - 128) / 128``, as soundfile reads
    PCM files; other integer dtypes are rejected.

    A 2-D array ``X`` is rejected: for a column of paths pass ``X[:, 0]``, for
    a batch of equal-length waveforms pass ``list(X)``.

    Output: with ``duration`` set, float32 ``(n_clips, n_samples)`` (or
    ``(n_clips, n_channels, n_samples)`` when ``mono=False``; every clip must
    then have the same number of channels); with ``duration=None``, a list of
    float32 ``(n_samples_i,)`` (or ``(n_channels, n_samples_i)``) arrays.

    A WAV file shorter than its header says (truncated, e.g. by an interrupted
    copy) is read as far as it goes, as libsndfile does, with an
    :class:`~sklearn_rfcnn.exceptions.RFCNNWarning` naming the file and both
    lengths; with ``duration`` set the missing part is padded.

    Silent clips are valid. Under ``Pipeline(memory=...)`` the cache is keyed
    by the paths, not the file contents: clear the cache if files change.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_rfcnn.transformers import AudioLoader
    >>> waves = [np.ones(8000, dtype=np.float32), np.ones(4000, dtype=np.int16)]
    >>> AudioLoader(sr=8000, duration=0.75).fit_transform(waves).shape
    (2, 6000)
    >>> [w.shape for w in AudioLoader(sr=8000).transform(waves)]
    [(8000,), (4000,)]
    """

    _parameter_constraints = {
        "sr": [Interval(Integral, 1, None, closed="left")],
        "mono": ["boolean"],
        "duration": [Interval(Real, 0, None, closed="neither"), None],
        "offset": [Interval(Real, 0, None, closed="left")],
        "pad_mode": [StrOptions({"constant", "wrap", "reflect"})],
        "n_jobs": [Integral, None],
        "on_error": [StrOptions({"raise", "skip"})],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        sr=22050,
        mono=True,
        duration=None,
        offset=0.0,
        pad_mode="constant",
        n_jobs=None,
        on_error="raise",
        verbose=0,
    ):
        self.sr = sr
        self.mono = mono
        self.duration = duration
        self.offset = offset
        self.pad_mode = pad_mode
        self.n_jobs = n_jobs
        self.on_error = on_error
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and the structure of ``X`` (nothing is decoded).

        Parameters
        ----------
        X : sequence of path-like or array-like
            Audio file paths or waveforms, one per clip.
        y : None
            Ignored.

        Returns
        -------
        self : AudioLoader
        """
        self._check_items(X)
        return self

    def transform(self, X):
        """Load every clip (the ``data`` of :meth:`load`).

        Parameters
        ----------
        X : sequence of path-like or array-like
            As in :meth:`load`.

        Returns
        -------
        waveforms : np.ndarray of float32 or list of np.ndarray
            ``(n_clips, n_samples)`` / ``(n_clips, n_channels, n_samples)``
            with ``duration`` set, else a list (see Notes). With
            ``on_error="skip"`` the failed clips are left out.
        """
        return self.load(X).data

    def load(self, X):
        """Load every clip and report what was kept and skipped.

        Parameters
        ----------
        X : sequence of path-like or array-like
            Audio file paths or waveforms, one per clip.

        Returns
        -------
        result : :class:`~sklearn.utils.Bunch`
            ``data``: what :meth:`transform` returns; ``kept``: int array of the
            input indices in ``data`` (use ``y[result.kept]``); ``skipped``: list
            of ``(index, item, reason)`` for clips left out by
            ``on_error="skip"``.

        Examples
        --------
        >>> import numpy as np
        >>> loader = AudioLoader(sr=8000, duration=0.5, on_error="skip")
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     res = loader.load([np.zeros(10), "missing.wav", np.ones(10)])
        >>> res.data.shape, res.kept.tolist(), res.skipped[0][:2]
        ((2, 4000), [0, 2], (1, 'missing.wav'))
        """
        check_is_fitted(self)
        self._validate_params()
        items = self._check_items(X)
        notes = {}  # index -> (index, path, frames, declared, sr): truncated WAVs

        # One (index, item) per call, and the note returned rather than stored:
        # on a cluster (thread_map under joblib's Dask backend) each task is
        # pickled with its own items only and runs in another process.
        def load_one(indexed):
            i, item = indexed
            result, note = self._load_one(item, i), None
            if not isinstance(result, RFCNNError) and _is_path(item):
                note = _truncated_wav(os.fsdecode(item))
            return result, note

        loaded = thread_map(load_one, enumerate(items), self.n_jobs)

        fixed = self.duration is not None
        out, kept, skipped = None, [], []
        with progress_bar(len(items), verbose=self.verbose, desc="AudioLoader") as bar:
            for i, (result, note) in enumerate(loaded):
                bar.update(1)
                if note is not None:
                    notes[i] = (i, *note)
                if isinstance(result, RFCNNError):
                    if self.on_error == "raise":
                        raise result
                    skipped.append((i, items[i], str(result)))
                    continue
                y = result[0] if self.mono else result
                if not fixed:
                    if out is None:
                        out = []
                    out.append(y)
                else:
                    if out is None:
                        out = np.empty((len(items), *y.shape), dtype=np.float32)
                    elif y.shape != out.shape[1:]:
                        raise DataError(
                            f"X[{i}] ({self._label(items[i])}) has {y.shape[0]} "
                            f"channel(s) but earlier clips have {out.shape[1]}; "
                            "with mono=False every clip needs the same channel "
                            "count (or use mono=True)."
                        )
                    out[len(kept)] = y
                kept.append(i)

        truncated = [notes[i] for i in kept if i in notes]
        if truncated:
            self._warn_truncated(truncated)
        if skipped:
            self._warn_skipped(skipped, len(items))
        if out is None:
            raise DataError(
                f"none of the {len(items)} clips could be loaded; first failure: "
                f"{skipped[0][2]}"
            )
        if fixed and len(kept) < len(items):
            out = out[: len(kept)].copy()
        return Bunch(data=out, kept=np.asarray(kept, dtype=np.intp), skipped=skipped)

    # -- helpers -----------------------------------------------------------------

    @staticmethod
    def _label(item):
        return repr(os.fsdecode(item)) if _is_path(item) else "waveform"

    @staticmethod
    def _warn_skipped(skipped, n_items):
        lines = [
            f"  X[{i}] {AudioLoader._label(item)}: {why}" for i, item, why in skipped
        ]
        warning = SkippedItemsWarning(
            f"AudioLoader skipped {len(skipped)} of {n_items} clips "
            "(on_error='skip'):\n" + "\n".join(lines)
        )
        warning.skipped = skipped
        warnings.warn(warning, stacklevel=3)

    def _warn_truncated(self, truncated):
        lines = [
            f"  X[{i}] {path!r}: holds {frames} samples ({frames / sr:.3g} s) but "
            f"its header declares {declared} ({declared / sr:.3g} s)"
            for i, path, frames, declared, sr in truncated
        ]
        what = (
            "the missing part is padded as pad_mode says where duration= "
            "reaches into it"
            if self.duration is not None
            else "only the samples present are returned"
        )
        warnings.warn(
            f"AudioLoader: {len(truncated)} file(s) are shorter than their WAV "
            f"header says (truncated, e.g. by an interrupted copy or download); "
            f"{what}. Copy the files again:\n" + "\n".join(lines),
            RFCNNWarning,
            stacklevel=3,
        )

    @staticmethod
    def _check_items(X):
        """Check that X is a non-empty 1-D sequence of paths or arrays."""
        if _is_path(X):
            raise InputTypeError(
                f"X is a single path ({X!r}); AudioLoader takes a sequence of paths, "
                "e.g. [path]."
            )
        ndim = getattr(X, "ndim", None)
        if ndim is not None and ndim != 1:
            shape = getattr(X, "shape", None)
            raise InputTypeError(
                f"X has shape {shape}, but AudioLoader takes a 1-D sequence with one "
                "path or waveform per clip. For a column of paths pass X[:, 0] (or "
                "df['path']); for a batch of equal-length waveforms pass list(X)."
            )
        try:
            items = list(X)
        except TypeError:
            raise InputTypeError(
                f"X must be a sequence of paths or waveforms, got {type(X).__name__}."
            ) from None
        if not items:
            raise DataError("X is empty; pass at least one path or waveform.")
        if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
            raise InputTypeError(
                f"X is a 1-D numeric array of shape {X.shape}; AudioLoader takes a "
                "sequence of clips, so pass a single waveform as [X]."
            )
        for i, item in enumerate(items):
            if not (_is_path(item) or isinstance(item, np.ndarray | list | tuple)):
                raise InputTypeError(
                    f"X[{i}] is a {type(item).__name__}; each item must be a file "
                    "path (str or path-like) or a waveform array."
                )
        return items

    def _load_one(self, item, index):
        """Load one item; return (channels, samples) float32 or the error."""
        try:
            scale = 1
            if _is_path(item):
                y, native_sr, scale = self._read_file(os.fsdecode(item), index)
                where = f"X[{index}] ({os.fsdecode(item)!r})"
            else:
                y, native_sr = self._read_array(item, index), self.sr
                where = f"X[{index}]"
            if y.shape[-1] == 0:
                raise AudioDecodeError(
                    f"{where} has no samples"
                    + (f" after offset={self.offset} s" if self.offset else "")
                    + "; drop the clip or lower offset.",
                    path=item if _is_path(item) else None,
                    index=index,
                )
            if y.dtype.kind == "f" and not np.isfinite(y).all():
                raise AudioDecodeError(
                    f"{where} contains NaN or inf samples; repair or drop the clip.",
                    path=item if _is_path(item) else None,
                    index=index,
                )
            y = _to_float(y, scale, self.mono)
            if native_sr != self.sr:
                y = _resample(y, native_sr, self.sr)
            if self.duration is not None:
                y = _fix_length(y, round(self.duration * self.sr), self.pad_mode)
            return np.ascontiguousarray(y, dtype=np.float32)
        except RFCNNError as exc:
            return exc
        except Exception as exc:  # e.g. MemoryError from a decoder: skippable too
            label = os.fsdecode(item) if _is_path(item) else "a waveform"
            return AudioDecodeError(
                f"X[{index}] ({label!r}) could not be loaded "
                f"({type(exc).__name__}: {exc}); repair the file, or drop it with "
                "on_error='skip'.",
                path=item if _is_path(item) else None,
                index=index,
            )

    def _read_array(self, item, index):
        y = np.asarray(item)
        if y.ndim not in (1, 2) or y.dtype.kind not in "biuf":
            raise InputTypeError(
                f"X[{index}] is an array of shape {y.shape} and dtype {y.dtype}; a "
                "waveform must be numeric, (n_samples,) or (n_channels, n_samples)."
            )
        y = _pcm_to_float(np.atleast_2d(y), index)
        start = int(self.offset * self.sr)
        stop = None if self.duration is None else start + int(self.duration * self.sr)
        return y[:, start:stop]

    def _read_file(self, path, index):
        if not os.path.exists(path):
            raise AudioDecodeError(
                f"X[{index}]: file {path!r} does not exist; check the path (relative "
                f"paths are resolved from {os.getcwd()!r}).",
                path=path,
                index=index,
            )
        if os.path.isdir(path):
            raise AudioDecodeError(
                f"X[{index}]: {path!r} is a directory, not an audio file; pass the "
                "files inside it, e.g. sorted(Path(folder).glob('*.wav')).",
                path=path,
                index=index,
            )
        info = os.stat(path)
        size = info.st_size
        if not stat.S_ISREG(info.st_mode):
            # a FIFO would block the decoder for ever, a device never ends
            raise AudioDecodeError(
                f"X[{index}]: {path!r} is not a regular file (a device, FIFO or "
                "socket); pass audio files only.",
                path=path,
                index=index,
            )
        try:
            with sf.SoundFile(path) as f:
                native_sr = f.samplerate
                if native_sr < MIN_SAMPLE_RATE:
                    raise AudioDecodeError(
                        f"X[{index}]: the header of {path!r} declares a sample "
                        f"rate of {native_sr} Hz, below {MIN_SAMPLE_RATE} Hz; "
                        f"resampled to sr={self.sr} its {f.frames} frames would "
                        f"become {int(f.frames * self.sr / max(native_sr, 1))} "
                        "samples. The header is damaged or the file is not "
                        "audio; re-encode it, or drop it with on_error='skip'.",
                        path=path,
                        index=index,
                    )
                if f.frames * f.channels > size * MAX_SAMPLES_PER_BYTE:
                    raise AudioDecodeError(
                        f"X[{index}]: the header of {path!r} declares {f.frames} "
                        f"frames of {f.channels} channel(s), but the file holds only "
                        f"{size} bytes (no codec packs more than "
                        f"{MAX_SAMPLES_PER_BYTE} samples in a byte). The header is "
                        "damaged; re-encode the file, or drop it with "
                        "on_error='skip'.",
                        path=path,
                        index=index,
                    )
                start = int(self.offset * native_sr)
                if start and f.frames > 0 and start >= f.frames:
                    raise AudioDecodeError(
                        f"X[{index}]: offset={self.offset} s is past the end of "
                        f"{path!r} ({f.frames / native_sr:.3g} s long); lower "
                        "offset.",
                        path=path,
                        index=index,
                    )
                if start:
                    f.seek(start)
                frames = -1 if self.duration is None else int(self.duration * native_sr)
                scale = 1
                dtype = "float32"
                if f.format in _INT16_FORMATS and f.subtype == "PCM_16":
                    dtype, scale = "int16", 2.0**-15
                y = f.read(frames=frames, dtype=dtype, always_2d=True).T
        except (sf.SoundFileError, RuntimeError, OSError, EOFError) as exc:
            raise AudioDecodeError(
                f"X[{index}]: could not decode {path!r} ({exc}). The file is corrupt "
                "or not in a format libsndfile reads (WAV, FLAC, OGG/Vorbis, Opus, "
                "MP3); re-encode it, or drop it with on_error='skip'.",
                path=path,
                index=index,
            ) from None
        return y, native_sr, scale

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        return tags
