"""The HEAR 2021 API: a saved pipeline as a `HEAR <https://hearbenchmark.com>`_ model.

Three functions, named as the HEAR benchmark's validator and evaluation kit
expect (``hear-validator``, ``hear-eval-kit``), turn a pipeline folder written
by :func:`~sklearn_rfcnn.save_pipeline` into a :class:`torch.nn.Module` that
embeds raw waveforms:

- :func:`load_model` builds the module from the folder;
- :func:`get_scene_embeddings` gives one vector per sound;
- :func:`get_timestamp_embeddings` gives a sequence of vectors per sound and
  their times in milliseconds.

The whole front end runs inside the module, in torch: the mel spectrogram of
the pipeline's :class:`~sklearn_rfcnn.MelSpectrogram` (the numbers of its
``backend="torch"``, which match librosa within 0.01 dB) and the per-band
statistics of its :class:`~sklearn_rfcnn.BandStandardizer`, so the module
works on whatever device it is moved to (``model.to("cuda")``).  Everything
runs in float32, in eval mode, without gradients, whatever the estimator's
``precision``: HEAR users compare embeddings across runs and machines, and
bf16 autocast (what ``precision="auto"`` picks on GPUs and on CPUs with native
bf16) rounds differently from one backend to another.  So the embeddings are
those of the estimator run with ``precision="32"``; a pipeline whose own
``transform`` runs under bf16 gives values that differ from them by bf16
rounding (a few per cent).

Embeddings
----------
*Scene embedding*: the network's pooled embedding (timm's
``forward_head(forward_features(x), pre_logits=True)``: the global average of
the last feature map, ``4 * width`` values for CP-ResNet)
of the whole clip, i.e. what ``pipeline[:-1]`` followed by
:meth:`RFCNNEmbedder.transform <sklearn_rfcnn.RFCNNEmbedder.transform>`
returns for the same waveform.  An estimator fitted with ``crop_frames``
embeds its sliding windows (``crop_frames`` frames every ``window_hop``) and
averages them, exactly as its ``transform`` does.

*Timestamp embeddings*: the network's last feature map
(``forward_features``, ``(4 * width, F', T')``) averaged over frequency,
one vector per output frame, in one forward pass per batch of sounds.  The
network's time stride ``s`` (the product of the time strides of its layers:
16 spectrogram frames for CP-ResNet) puts its output frames
``s * hop_length / sr`` seconds apart (256 ms at 16 kHz with
``hop_length=256``, 371.5 ms at 22.05 kHz with ``hop_length=512``).  The
spectrogram is padded by ``s // 2`` frames at the start (edge frames
repeated), which puts output frame ``j`` at the centre of input frame
``j * s``, i.e. at ``j * s * hop_length / sr`` seconds.  HEAR asks for a hop
of at most 50 ms (its event tasks score onsets at that resolution), so the
timestamps divide that spacing into ``m = ceil(spacing / 50 ms)`` equal
steps (:attr:`HEARModel.hop_ms`: 42.7 ms at 16 kHz / 256, 46.4 ms at
22.05 kHz / 512), and the embedding at a time between two output frames is
their linear interpolation (every ``m``-th timestamp is an output frame
exactly).  Timestamp ``k`` is at ``k * hop_ms`` milliseconds, from 0 to the
last such time within the sound: the last lies less than one hop (at most
50 ms) before the sound's end and never after it (HEAR's validator rejects
timestamps past the end); frames are padded at the end (edge frames
repeated) so that every timestamp has output frames around it.  Each vector
sees the network's receptive field around its time; a finer hop does not
add detail finer than the network's stride.

Examples
--------
>>> import numpy as np
>>> import tempfile
>>> import torch
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn_rfcnn import (BandStandardizer, MelSpectrogram, RFCNNEmbedder,
...                            save_pipeline)
>>> from sklearn_rfcnn import hear
>>> X = np.random.default_rng(0).standard_normal((4, 16000)).astype("float32")
>>> pipe = make_pipeline(
...     MelSpectrogram(sr=16000, n_fft=512, hop_length=256, n_mels=32),
...     BandStandardizer(),
...     RFCNNEmbedder(width=2, rho=2, depth=8, max_epochs=1, precision="32",
...                   verbose=0, random_state=0),
... ).fit(X, [0, 1, 0, 1])
>>> folder = save_pipeline(pipe, f"{tempfile.mkdtemp()}/model")
>>> model = hear.load_model(folder)
>>> model.sample_rate, model.scene_embedding_size
(16000, 8)
>>> audio = torch.as_tensor(X[:2])
>>> hear.get_scene_embeddings(audio, model).shape
torch.Size([2, 8])
>>> embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
>>> embeddings.shape, round(model.hop_ms, 2)
(torch.Size([2, 24, 8]), 42.67)
>>> [round(t, 2) for t in timestamps[0, [0, 1, 2, 23]].tolist()]  # ms; 1 s clip
[0.0, 42.67, 85.33, 981.33]
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from sklearn_rfcnn.estimators import aggregate_windows, sliding_windows, window_hop
from sklearn_rfcnn.exceptions import DataError, InputTypeError, ParameterError
from sklearn_rfcnn.utils._docstrings import fill_doc

__all__ = [
    "MAX_HOP_MS",
    "SAMPLE_RATES",
    "HEARModel",
    "get_scene_embeddings",
    "get_timestamp_embeddings",
    "load_model",
]

#: The sampling rates HEAR 2021 allows a model to declare.
SAMPLE_RATES = (16000, 22050, 32000, 44100, 48000)

#: Largest hop between timestamp embeddings, in milliseconds (HEAR's advice).
MAX_HOP_MS = 50.0


def _find_steps(pipe, where):
    """``(mel, standardizer, estimator)`` of a loaded pipeline, checked."""
    from sklearn_rfcnn.estimators import RFCNNClassifier, RFCNNEmbedder
    from sklearn_rfcnn.transformers import (
        AudioLoader,
        BandStandardizer,
        MelSpectrogram,
    )

    loader = mel = standardizer = estimator = None
    for name, step in pipe.steps:
        if estimator is not None:
            break  # steps after the CNN (e.g. an SVC on its embeddings) are unused
        if step is None or step == "passthrough":
            continue
        if isinstance(step, AudioLoader) and mel is None:
            loader = step
        elif isinstance(step, MelSpectrogram) and mel is None:
            mel = step
        elif isinstance(step, BandStandardizer) and mel is not None:
            if standardizer is not None:
                raise ParameterError(
                    f"{where!r}: step {name!r} is a second BandStandardizer; a "
                    "HEAR model takes at most one."
                )
            standardizer = step
        elif isinstance(step, (RFCNNClassifier, RFCNNEmbedder)) and mel is not None:
            estimator = step
        else:
            raise ParameterError(
                f"{where!r}: step {name!r} ({type(step).__name__}) cannot run in "
                "a HEAR model, which takes [AudioLoader,] MelSpectrogram, "
                "[BandStandardizer,] then an RFCNNEmbedder or RFCNNClassifier."
            )
    if mel is None or estimator is None:
        missing = "MelSpectrogram" if mel is None else "RFCNNEmbedder/RFCNNClassifier"
        raise ParameterError(
            f"{where!r}: the pipeline has no {missing} step; a HEAR model needs "
            "[AudioLoader,] MelSpectrogram, [BandStandardizer,] then an "
            "RFCNNEmbedder or RFCNNClassifier."
        )
    if loader is not None and int(loader.sr) != int(mel.sr):
        raise ParameterError(
            f"{where!r}: AudioLoader(sr={loader.sr}) and MelSpectrogram(sr="
            f"{mel.sr}) disagree; save a pipeline whose steps share one rate."
        )
    return mel, standardizer, estimator


class HEARModel(torch.nn.Module):
    """A fitted pipeline as a torch module: waveforms in, embeddings out.

    Built by :func:`load_model`; use it through
    :func:`get_scene_embeddings` and :func:`get_timestamp_embeddings`.  The
    mel spectrogram, the band standardisation and the network are all torch
    operations on the module's buffers and parameters, so ``model.to(device)``
    moves the whole computation.

    Parameters
    ----------
    mel : MelSpectrogram
        The pipeline's spectrogram step (its settings are copied).
    standardizer : BandStandardizer or None
        The fitted standardiser (its ``mean_`` and ``scale_`` are copied).
    estimator : RFCNNEmbedder or RFCNNClassifier
        The fitted CNN step (a float32 copy of its network is kept).

    Attributes
    ----------
    sample_rate : int
        Rate in Hz the audio must have (the ``MelSpectrogram``'s ``sr``).
    scene_embedding_size : int
        Length of a scene embedding (the network's ``num_features``).
    timestamp_embedding_size : int
        Length of a timestamp embedding (the same).
    hop_ms : float
        Milliseconds between timestamps: ``frame_hop_ms / timestamps_per_frame``,
        at most :data:`MAX_HOP_MS`.
    frame_hop_ms : float
        Milliseconds between the network's output frames (its time stride).
    timestamps_per_frame : int
        Timestamps per output frame (the interpolation steps).
    network : torch.nn.Module
        The CNN (eval mode, float32).

    Examples
    --------
    See :func:`load_model` and the module docstring.
    """

    def __init__(self, mel, standardizer, estimator):
        super().__init__()
        from sklearn_rfcnn.transformers._mel_torch import TorchMel

        if int(mel.sr) not in SAMPLE_RATES:
            raise ParameterError(
                f"MelSpectrogram(sr={mel.sr}) is not a rate HEAR allows "
                f"({', '.join(map(str, SAMPLE_RATES))} Hz); fit and save the "
                "pipeline at one of them."
            )
        self.sample_rate = int(mel.sr)
        self.n_fft = int(mel.n_fft)
        self.hop_length = int(mel.hop_length)
        self.scale = mel.scale
        n_mels = int(mel.n_mels)
        tables = TorchMel(**mel._settings(), device="cpu")
        self.register_buffer("window", tables.window.clone())
        self.register_buffer("basis", tables.basis.clone())
        self.register_buffer("offset", tables.offset.clone())

        if standardizer is None:
            mean = np.zeros(n_mels)
            scale = np.ones(n_mels)
        else:
            mean = np.asarray(standardizer.mean_, dtype=np.float64)
            scale = np.asarray(standardizer.scale_, dtype=np.float64)
            if mean.shape not in ((n_mels,), (1, n_mels)):
                raise ParameterError(
                    f"BandStandardizer statistics of shape {mean.shape} do not "
                    f"fit mono spectrograms of {n_mels} bands; a HEAR model "
                    "needs one fitted on (n_clips, n_mels, n_frames) spectrograms."
                )
        # (X - mean) * (1 / scale) in float32, as BandStandardizer.transform
        mean = mean.astype(np.float32).reshape(1, 1, n_mels, 1)
        inv = (1.0 / scale).astype(np.float32).reshape(1, 1, n_mels, 1)
        self.register_buffer("mean", torch.from_numpy(mean))
        self.register_buffer("inv_scale", torch.from_numpy(inv))

        network = copy.deepcopy(estimator.net_.module_).float().cpu().eval()
        in_channels = getattr(network, "in_channels", 1)
        if in_channels != 1:
            raise ParameterError(
                f"the network takes {in_channels}-channel spectrograms; HEAR "
                "audio is mono, so save a pipeline fitted on mono clips."
            )
        for attr in ("forward_features", "forward_head", "rf_layers"):
            if not callable(getattr(network, attr, None)):
                raise ParameterError(
                    f"the network ({type(network).__name__}) has no {attr}(); "
                    "a HEAR model needs one of sklearn_rfcnn.models."
                )
        self.network = network
        self.scene_embedding_size = int(network.num_features)
        self.timestamp_embedding_size = int(network.num_features)
        self.time_stride = int(
            math.prod(layer.stride[1] for layer in network.rf_layers())
        )
        self.frame_hop_ms = (
            1000.0 * self.time_stride * self.hop_length / self.sample_rate
        )
        self.timestamps_per_frame = max(1, math.ceil(self.frame_hop_ms / MAX_HOP_MS))
        self.hop_ms = self.frame_hop_ms / self.timestamps_per_frame
        self.batch_size = int(estimator.batch_size)
        self.crop_frames = estimator.crop_frames
        self.window_hop = (
            None
            if self.crop_frames is None
            else window_hop(self.crop_frames, estimator.window_hop)
        )

    # -- front end -----------------------------------------------------------
    def _check_audio(self, audio):
        if not isinstance(audio, torch.Tensor):
            raise InputTypeError(
                f"audio must be a torch.Tensor of shape (n_sounds, n_samples), "
                f"got {type(audio).__name__}; wrap it with torch.as_tensor."
            )
        if audio.ndim != 2 or audio.shape[0] < 1 or audio.shape[1] < 1:
            raise DataError(
                f"audio must have shape (n_sounds, n_samples) with both >= 1, got "
                f"{tuple(audio.shape)}; stack mono sounds of one length."
            )
        if not audio.is_floating_point():
            raise InputTypeError(
                f"audio must be float32 samples in [-1, 1], got {audio.dtype}."
            )
        return audio.to(device=self.window.device, dtype=torch.float32)

    def spectrogram(self, audio):
        """Standardised mel spectrograms of a batch of waveforms.

        Parameters
        ----------
        audio : torch.Tensor [shape=(n_sounds, n_samples)]
            float32 waveforms at ``sample_rate``.

        Returns
        -------
        S : torch.Tensor [shape=(n_sounds, 1, n_mels, n_frames)]
            What ``MelSpectrogram`` then ``BandStandardizer`` compute
            (float32, on the module's device).

        Examples
        --------
        >>> model.spectrogram(audio).shape  # doctest: +SKIP
        torch.Size([2, 1, 32, 63])
        """
        from sklearn_rfcnn.transformers._mel_torch import mel_of

        x = self._check_audio(audio)
        if x.shape[-1] < self.n_fft:  # as MelSpectrogram: zero-pad to one frame
            x = F.pad(x, (0, self.n_fft - x.shape[-1]))
        M = mel_of(self, x)
        return (M[:, None] - self.mean) * self.inv_scale

    # -- embeddings -----------------------------------------------------------
    def _pooled(self, S):
        """Pooled embeddings of ``(n, 1, F, T)`` spectrograms, batch by batch.

        timm's ``forward_head(forward_features(x), pre_logits=True)``.
        """
        net = self.network
        out = [
            net.forward_head(net.forward_features(S[i : i + self.batch_size]), True)
            for i in range(0, len(S), self.batch_size)
        ]
        return torch.cat(out).float()

    def forward(self, audio):
        """Scene embeddings of a batch of waveforms (see :func:`get_scene_embeddings`).

        Parameters
        ----------
        audio : torch.Tensor [shape=(n_sounds, n_samples)]
            Mono float32 waveforms at ``sample_rate``, as for :meth:`spectrogram`.

        Returns
        -------
        embeddings : torch.Tensor [shape=(n_sounds, scene_embedding_size)]

        Examples
        --------
        >>> model(audio).shape  # doctest: +SKIP
        torch.Size([2, 8])
        """
        S = self.spectrogram(audio)
        if self.crop_frames is None:
            return self._pooled(S)
        # the estimator's windows (crop_frames frames every window_hop, one more
        # aligned to the end, a short clip tiled), embeddings averaged per clip
        windows, n_win = sliding_windows(S, self.crop_frames, self.window_hop)
        owners = torch.arange(len(S), device=S.device).repeat_interleave(n_win)
        return aggregate_windows(self._pooled(windows), owners, "mean")[0]

    def timestamp_embeddings(self, audio):
        """Frame-level embeddings and their times (:func:`get_timestamp_embeddings`).

        Parameters
        ----------
        audio : torch.Tensor [shape=(n_sounds, n_samples)]

        Returns
        -------
        embeddings : torch.Tensor [shape=(n_sounds, n_timestamps, dim)]
            ``dim`` is ``timestamp_embedding_size``.
        timestamps : torch.Tensor [shape=(n_sounds, n_timestamps)]
            Centre times in milliseconds.

        Examples
        --------
        >>> model.timestamp_embeddings(audio)[1].shape  # doctest: +SKIP
        torch.Size([2, 24])
        """
        return self._frame_embeddings(self.spectrogram(audio), audio.shape[-1])

    def _frame_embeddings(self, S, n_samples):
        """Timestamp embeddings and times of spectrograms ``(n, 1, F, T)``."""
        n = S.shape[0]
        s, m = self.time_stride, self.timestamps_per_frame
        # timestamp k lies k / m output frames (k * s * hop_length / m samples)
        # from the start, as long as it lies within the sound
        n_ts = 1 + int(n_samples) * m // (s * self.hop_length)
        # output frame j is centred on padded frame j * s + s // 2: pad s // 2
        # in front; behind, enough that the frames around every timestamp exist
        left, right = s // 2, 3 * s
        S = F.pad(S, (left, right, 0, 0), mode="replicate")
        out = []
        for i in range(0, n, self.batch_size):  # one pass per batch of sounds
            fmap = self.network.forward_features(S[i : i + self.batch_size])
            out.append(fmap.mean(dim=2).transpose(1, 2).float())
        frames = torch.cat(out)  # (n, T', dim): one vector per output frame
        k = torch.arange(n_ts, device=frames.device)
        lo = k // m
        if int(lo[-1]) >= frames.shape[1]:  # pragma: no cover - unknown stride
            raise DataError(
                f"the network gave {frames.shape[1]} output frames for "
                f"{S.shape[-1] - left - right} input frames, fewer than the "
                f"{int(lo[-1]) + 1} the timestamps need."
            )
        hi = torch.clamp(lo + 1, max=frames.shape[1] - 1)
        weight = ((k % m).float() / m)[None, :, None]
        emb = (1.0 - weight) * frames[:, lo] + weight * frames[:, hi]
        times = k.double() * self.frame_hop_ms / m
        return emb.contiguous(), times.float()[None].expand(n, n_ts).contiguous()


def load_model(model_file_path=""):
    """Build a HEAR model from a pipeline folder written by ``save_pipeline``.

    Parameters
    ----------
    model_file_path : str or path-like
        The folder :func:`~sklearn_rfcnn.save_pipeline` wrote, holding a
        fitted ``[AudioLoader,] MelSpectrogram, [BandStandardizer,]
        RFCNNEmbedder`` (or ``RFCNNClassifier``) pipeline; steps after the CNN
        (e.g. an ``SVC`` on its embeddings) are ignored.

    Returns
    -------
    model : HEARModel
        A :class:`torch.nn.Module` on the CPU in eval mode, with integer
        attributes ``sample_rate``, ``scene_embedding_size`` and
        ``timestamp_embedding_size``; move it with ``model.to(device)``.

    Raises
    ------
    DataError
        The folder is missing or is not a saved pipeline (the message says
        why).
    ParameterError
        The pipeline cannot become a HEAR model: a rate HEAR does not allow
        (16000, 22050, 32000, 44100 and 48000 Hz are), a step of another kind,
        or a multichannel network.

    See Also
    --------
    get_scene_embeddings, get_timestamp_embeddings

    Examples
    --------
    >>> import numpy as np
    >>> import tempfile
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_rfcnn import (BandStandardizer, MelSpectrogram,
    ...                            RFCNNClassifier, save_pipeline)
    >>> from sklearn_rfcnn.hear import load_model
    >>> X = np.random.default_rng(0).standard_normal((4, 8000)).astype("float32")
    >>> pipe = make_pipeline(
    ...     MelSpectrogram(sr=16000, n_fft=512, hop_length=256, n_mels=16),
    ...     BandStandardizer(),
    ...     RFCNNClassifier(width=2, rho=2, depth=8, max_epochs=1, verbose=0,
    ...                     random_state=0),
    ... ).fit(X, [0, 1, 0, 1])
    >>> model = load_model(save_pipeline(pipe, f"{tempfile.mkdtemp()}/m"))
    >>> model.sample_rate, model.scene_embedding_size, model.timestamp_embedding_size
    (16000, 8, 8)
    """
    from sklearn_rfcnn._pipeline_io import load_pipeline
    from sklearn_rfcnn.exceptions import RFCNNError

    where = os.fspath(model_file_path)
    if not os.path.isdir(where):
        raise DataError(
            f"model_file_path={where!r} is not a folder; pass the folder "
            "sklearn_rfcnn.save_pipeline wrote."
        )
    try:
        pipe = load_pipeline(where)
    except (RFCNNError, OSError) as exc:
        raise DataError(
            f"model_file_path={where!r} is not a pipeline saved with "
            f"save_pipeline: {exc}"
        ) from exc
    mel, standardizer, estimator = _find_steps(pipe, where)
    return HEARModel(mel, standardizer, estimator).eval()


def _check_model(model):
    if not isinstance(model, HEARModel):
        raise InputTypeError(
            f"model must be the module load_model returns, got {type(model).__name__}."
        )
    model.eval()


#: The parameters of the HEAR embedding functions (docstrings).
_AUDIO_AND_MODEL_DOC = """
Parameters
----------
audio : torch.Tensor [shape=(n_sounds, n_samples)]
    float32 mono waveforms at ``model.sample_rate``, on the model's device.
model : HEARModel
    From :func:`load_model`.
"""


@fill_doc(audio_and_model=_AUDIO_AND_MODEL_DOC)
def get_scene_embeddings(audio, model):
    """One embedding per sound: the network's pooled features of the whole clip.

    %(audio_and_model)s

    Returns
    -------
    embeddings : torch.Tensor [shape=(n_sounds, model.scene_embedding_size)]
        float32; the same numbers (up to float rounding) as
        ``pipeline[:-1].transform`` then ``RFCNNEmbedder.transform`` of the
        waveforms as numpy, with the front end computed in torch, and the
        network in float32 whatever the estimator's ``precision`` (see the
        module docstring).

    Examples
    --------
    >>> get_scene_embeddings(audio, model).shape  # doctest: +SKIP
    torch.Size([2, 8])
    """
    _check_model(model)
    with torch.no_grad():
        return model(audio)


@fill_doc(audio_and_model=_AUDIO_AND_MODEL_DOC)
def get_timestamp_embeddings(audio, model):
    """Embeddings at regular times: the last feature map averaged over frequency.

    Timestamp ``k`` is at ``k * model.hop_ms`` milliseconds (at most 50 ms:
    the network's output frames, 16 spectrogram frames apart for CP-ResNet,
    with linear interpolation between them), from 0 to the last such time
    within the sound (less than one hop before its end, never after it); one
    network pass per batch of sounds.  See the module docstring for the
    alignment.

    %(audio_and_model)s

    Returns
    -------
    embeddings : torch.Tensor [shape=(n_sounds, n_timestamps, dim)]
        float32; ``dim`` is ``model.timestamp_embedding_size``.
    timestamps : torch.Tensor [shape=(n_sounds, n_timestamps)]
        float32 centre times in milliseconds, the same for every sound.

    Examples
    --------
    >>> emb, timestamps = get_timestamp_embeddings(audio, model)  # doctest: +SKIP
    >>> timestamps.shape  # doctest: +SKIP
    torch.Size([2, 24])
    """
    _check_model(model)
    with torch.no_grad():
        return model.timestamp_embeddings(audio)
