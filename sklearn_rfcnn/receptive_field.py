"""Receptive-field arithmetic: the rho kernel rule, the exact RF recursion, units.

Pure Python (numpy is imported lazily for the mel scale); this module never
imports torch or scikit-learn, so the RF of a configuration can be computed,
searched over and printed without building a network.

The receptive field (RF) of a convolutional network along one axis follows the
standard exact recursion over its longest path of layers
(Koutini et al., EUSIPCO 2019): with jump :math:`j_0 = 1` and :math:`r_0 = 1`,

.. math::

    r_n = r_{n-1} + (d_n (k_n - 1)) \\, j_{n-1}, \\qquad j_n = j_{n-1} s_n

where :math:`k_n`, :math:`s_n`, :math:`d_n` are kernel size, stride and
dilation of layer *n*; pooling layers count as layers (a 2x2 max-pool is
``k = 2, s = 2``) and padding does not change the RF.

Examples
--------
>>> from sklearn_rfcnn.receptive_field import receptive_field, cp_resnet_layers
>>> receptive_field(cp_resnet_layers(rho=5))
RF(freq=87, time=87)
>>> receptive_field(cp_resnet_layers(rho_f=2, rho_t=7))
RF(freq=39, time=135)
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import NamedTuple

from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.utils._arith_checks import check_int as _check_int
from sklearn_rfcnn.utils._mel_scale import hz_to_mel, mel_frequencies, mel_to_hz

__all__ = [
    "DEFAULT_RHO",
    "RF",
    "LayerSpec",
    "RFDescription",
    "block_kernels",
    "cp_resnet_layers",
    "describe_receptive_field",
    "hz_to_mel",
    "kernel_schedule",
    "max_rho",
    "mel_frequencies",
    "mel_to_hz",
    "pool_positions",
    "receptive_field",
    "receptive_field_trace",
    "resolve_rho",
]

#: The default rho of every CP-ResNet in the library (network, estimators,
#: CLI, ``rfcnn rf``, search spaces and model cards ask this one name).
#: Chosen by measurement (``benchmarks/recipe_study.py``, configurations
#: ``rho5`` ... ``rho12`` on 5 s clips, 2 SoundFonts x 3 seeds; the curve is in
#: ``benchmarks/README.md`` section 1): rho 7-12 form a plateau 0.03 mAP above
#: rho 5, and 9 sits in its middle (RF 199 px: 4.6 s at 22.05 kHz, hop 512).
#: Releases up to 0.1 used 5 (the paper's DCASE value).
DEFAULT_RHO = 9
#: The default rho of release 0.1, for the saved files of that release (format
#: 1), which record no defaults (see :func:`resolve_rho`'s ``default``).
RELEASE_0_1_DEFAULT_RHO = 5


# --------------------------------------------------------------------------- #
# Validation helpers
# --------------------------------------------------------------------------- #
def _check_depth(depth):
    depth = _check_int(
        "depth",
        depth,
        minimum=8,
        hint=" CP-ResNet depth has the form 6*n + 2 (8, 14, 20, 26, ...), "
        "n blocks per stage; the paper uses depth=26.",
    )
    if (depth - 2) % 6:
        raise ParameterError(
            f"depth={depth} must have the form 6*n + 2 (n BasicBlocks per stage), "
            f"e.g. {6 * max(1, (depth - 2) // 6) + 2} or "
            f"{6 * ((depth - 2) // 6 + 1) + 2}; the paper uses depth=26."
        )
    return depth


def max_rho(depth: int = 26) -> int:
    """Largest meaningful rho for a CP-ResNet of the given depth.

    Parameters
    ----------
    depth : int >= 8, of the form 6*n + 2
        Network depth; ``(depth - 2) / 6`` BasicBlocks per stage.

    Returns
    -------
    rho_max : int
        ``2 * n_blocks - 2`` where ``n_blocks = 3 * (depth - 2) / 6``: at this
        value every block convolution except the second one is 3x3.

    Examples
    --------
    >>> max_rho(26), max_rho(8), max_rho(14)
    (22, 4, 10)
    """
    depth = _check_depth(depth)
    return 2 * (3 * (depth - 2) // 6) - 2


def _check_rho(name, rho, depth):
    hi = max_rho(depth)
    return _check_int(
        name,
        rho,
        minimum=0,
        maximum=hi,
        hint=f" For depth={depth}, rho ranges over 0..{hi} (the paper uses 5-7).",
    )


# --------------------------------------------------------------------------- #
# The rho rule
# --------------------------------------------------------------------------- #
def resolve_rho(
    rho: int | None = None,
    rho_f: int | None = None,
    rho_t: int | None = None,
    *,
    default: int | None = None,
) -> tuple[int, int, int]:
    """The one rho rule: ``rho`` defaults to :data:`DEFAULT_RHO`, each axis to ``rho``.

    Parameters
    ----------
    rho : int or None, default=None
        Shared rho; None means ``default``.
    rho_f, rho_t : int or None, default=None
        rho along frequency and time; None means the shared ``rho``.
    default : int or None, default=None
        The value of an unset ``rho``; None means :data:`DEFAULT_RHO` (a file
        saved by an older release passes the default of that release).

    Returns
    -------
    rho, rho_f, rho_t : int
        The values a network is built with (not range-checked here:
        :func:`block_kernels` checks them against the depth).

    Examples
    --------
    >>> resolve_rho(7)
    (7, 7, 7)
    >>> resolve_rho(7, rho_t=3)
    (7, 7, 3)
    >>> resolve_rho(default=5)
    (5, 5, 5)
    >>> resolve_rho() == (DEFAULT_RHO,) * 3
    True
    """
    if rho is None:
        rho = DEFAULT_RHO if default is None else default
    return (
        rho,
        rho if rho_f is None else rho_f,
        rho if rho_t is None else rho_t,
    )


def _conv_kernel(n: int, rho: int) -> int:
    # Block convolutions numbered 1..2*n_blocks in forward order.
    if n == 1:
        return 3
    if n == 2:
        return 1
    return 3 if (n - 2) <= rho else 1


def kernel_schedule(rho: int, depth: int = 26) -> list[tuple[int, int]]:
    """Kernel sizes of every BasicBlock of a CP-ResNet for a given rho.

    Number the ``2 * n_blocks`` block convolutions in forward order from 1.
    Conv 1 is 3x3, conv 2 is 1x1, and conv *n* (n >= 3) is 3x3 when
    ``n - 2 <= rho`` and 1x1 otherwise: the first rho convolutions after the
    first block are 3x3, every later one is 1x1 (Koutini et al. 2020, §1.2 of
    the method notes).

    Parameters
    ----------
    rho : int, 0 <= rho <= max_rho(depth)
        The receptive-field knob (22 for ``depth=26``).
    depth : int >= 8, of the form 6*n + 2
        ``(depth - 2) / 6`` BasicBlocks per stage, three stages.

    Returns
    -------
    schedule : list of (int, int) [shape=(3 * (depth - 2) / 6,)]
        ``(k1, k2)``: kernel sizes of conv1 and conv2 of each block, in order
        (stage 1 block 1 first).

    Raises
    ------
    ParameterError
        If ``depth`` is not of the form 6*n + 2 or ``rho`` is out of range.

    See Also
    --------
    block_kernels : per-axis kernels for separate ``rho_f`` / ``rho_t``.

    Examples
    --------
    >>> kernel_schedule(5)[:4]
    [(3, 1), (3, 3), (3, 3), (3, 1)]
    >>> kernel_schedule(7)[4:6]
    [(3, 1), (1, 1)]
    >>> kernel_schedule(0, depth=8)
    [(3, 1), (1, 1), (1, 1)]
    """
    depth = _check_depth(depth)
    rho = _check_rho("rho", rho, depth)
    n_blocks = 3 * (depth - 2) // 6
    return [
        (_conv_kernel(2 * b + 1, rho), _conv_kernel(2 * b + 2, rho))
        for b in range(n_blocks)
    ]


def block_kernels(
    rho: int | None = None,
    rho_f: int | None = None,
    rho_t: int | None = None,
    depth: int = 26,
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Per-axis kernel sizes of every block, for separate frequency/time rho.

    The rho rule is applied to each axis on its own: conv *n* gets kernel
    ``(kf, kt)`` with ``kf`` from :func:`kernel_schedule` at ``rho_f`` and
    ``kt`` at ``rho_t`` (method notes §1.5).

    Parameters
    ----------
    rho : int, 0 <= rho <= max_rho(depth), or None
        Shared rho, used for an axis whose own value is None; None means
        :data:`DEFAULT_RHO` (:func:`resolve_rho`).
    rho_f, rho_t : int or None
        rho along frequency (rows) and time (columns); None means ``rho``.
    depth : int >= 8, of the form 6*n + 2

    Returns
    -------
    kernels : list of ((int, int), (int, int)) [shape=(n_blocks,)]
        ``((kf1, kt1), (kf2, kt2))``: conv1 and conv2 kernel of each block.

    Examples
    --------
    >>> block_kernels(rho_f=0, rho_t=2)[:2]
    [((3, 3), (1, 1)), ((1, 3), (1, 3))]
    """
    depth = _check_depth(depth)
    _check_rho("rho", resolve_rho(rho)[0], depth)
    rho, rho_f, rho_t = resolve_rho(rho, rho_f, rho_t)
    rf_f = kernel_schedule(_check_rho("rho_f", rho_f, depth), depth)
    rf_t = kernel_schedule(_check_rho("rho_t", rho_t, depth), depth)
    return [((f1, t1), (f2, t2)) for (f1, f2), (t1, t2) in zip(rf_f, rf_t)]


def pool_positions(depth: int = 26) -> tuple[int, ...]:
    """Blocks of stage 1 (1-based) that are followed by a 2x2 max-pool.

    The reference network (depth 26, four blocks per stage) pools after
    blocks 1, 2 and 4 of stage 1.  For other depths the three pools keep
    their positions where those blocks exist and otherwise move to the last
    block of stage 1, so the total downsampling is always 16.

    Parameters
    ----------
    depth : int >= 8, of the form 6*n + 2

    Returns
    -------
    positions : tuple of int [shape=(3,)]
        Block index after which each pool sits (a position may repeat).

    Examples
    --------
    >>> pool_positions(26), pool_positions(44), pool_positions(14), pool_positions(8)
    ((1, 2, 4), (1, 2, 4), (1, 2, 2), (1, 1, 1))
    """
    depth = _check_depth(depth)
    n = (depth - 2) // 6
    return tuple(min(p, n) for p in (1, 2, 4))


# --------------------------------------------------------------------------- #
# Layer specs and the RF recursion
# --------------------------------------------------------------------------- #
def _pair(name, value):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value), int(value))
    try:
        a, b = value
        a, b = int(a), int(b)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{name}={value!r} must be a positive int or a pair (freq, time) of them."
        ) from None
    if a < 1 or b < 1:
        raise ParameterError(f"{name}={value!r} must be >= 1 on both axes.")
    return (a, b)


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a network's longest path, as the RF recursion sees it.

    Parameters
    ----------
    kernel_size : int >= 1 or (int, int)
        Kernel (window) size; a single int is used on both axes, a pair is
        ``(freq, time)``.
    stride : int >= 1 or (int, int), default=1
    dilation : int >= 1 or (int, int), default=1
    kind : str, default="conv"
        ``"conv"`` or ``"pool"``; informational, the arithmetic is the same.
    name : str, default=""
        Where the layer sits (e.g. ``"stage1.block2.conv1"``).

    Examples
    --------
    >>> LayerSpec(3)
    LayerSpec(kernel_size=(3, 3), stride=(1, 1), dilation=(1, 1), kind='conv', name='')
    >>> LayerSpec((3, 1), stride=2, kind="pool").effective_kernel
    (3, 1)
    >>> LayerSpec(3, dilation=2).effective_kernel
    (5, 5)
    """

    kernel_size: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    kind: str = "conv"
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "kernel_size", _pair("kernel_size", self.kernel_size))
        object.__setattr__(self, "stride", _pair("stride", self.stride))
        object.__setattr__(self, "dilation", _pair("dilation", self.dilation))

    @property
    def effective_kernel(self) -> tuple[int, int]:
        """Kernel size after dilation, ``d * (k - 1) + 1`` per axis."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation))


class RF(NamedTuple):
    """A receptive field in input pixels: ``freq`` rows by ``time`` columns.

    Examples
    --------
    >>> rf = RF(87, 135)
    >>> rf.freq, rf.time
    (87, 135)
    """

    freq: int
    time: int


def _as_layers(model_or_layers):
    obj = model_or_layers
    for attr in ("rf_layers", "receptive_field_layers"):
        method = getattr(obj, attr, None)
        if callable(method):
            obj = method()
            break
    try:
        layers = list(obj)
    except TypeError:
        raise ParameterError(
            f"model_or_layers={type(model_or_layers).__name__} is neither a sequence "
            "of LayerSpec nor an object with an rf_layers() method; pass e.g. "
            "cp_resnet_layers(rho=5) or a network from sklearn_rfcnn.models."
        ) from None
    for i, layer in enumerate(layers):
        if not isinstance(layer, LayerSpec):
            raise ParameterError(
                f"layer {i} is a {type(layer).__name__}, expected a LayerSpec; build "
                "layers as LayerSpec(kernel_size, stride, dilation)."
            )
    return layers


def receptive_field_trace(model_or_layers) -> list[tuple[LayerSpec, RF, RF]]:
    """The RF recursion layer by layer: ``(layer, rf_after, jump_after)``.

    Parameters
    ----------
    model_or_layers : sequence of LayerSpec, or object with ``rf_layers()``

    Returns
    -------
    trace : list of (LayerSpec, RF, RF)
        The receptive field and the jump (cumulative stride) after each layer.

    Examples
    --------
    >>> layers = [LayerSpec(5, stride=2), LayerSpec(3), LayerSpec(2, 2, kind="pool")]
    >>> [(rf.time, jump.time) for _, rf, jump in receptive_field_trace(layers)]
    [(5, 2), (9, 2), (11, 4)]
    """
    rf, jump = [1, 1], [1, 1]
    out = []
    for layer in _as_layers(model_or_layers):
        for a in range(2):
            rf[a] += (layer.effective_kernel[a] - 1) * jump[a]
            jump[a] *= layer.stride[a]
        out.append((layer, RF(*rf), RF(*jump)))
    return out


def receptive_field(model_or_layers) -> RF:
    """Exact maximum receptive field, per axis, in input pixels.

    Applies the recursion ``r_n = r_{n-1} + (d_n (k_n - 1)) j_{n-1}``,
    ``j_n = j_{n-1} s_n`` (``r_0 = j_0 = 1``) to the longest path of the
    network, where the maximum RF is reached.

    Parameters
    ----------
    model_or_layers : sequence of LayerSpec, or object with ``rf_layers()``
        A list of layer specs, or any object (e.g. a network from
        :mod:`sklearn_rfcnn.models`) whose ``rf_layers()`` method returns
        its longest-path layer specs.  No torch import is needed here.

    Returns
    -------
    rf : RF
        ``RF(freq, time)`` in spectrogram pixels (mel bins, frames).

    Raises
    ------
    ParameterError
        If the argument is not a layer sequence or lacks ``rf_layers()``.

    Examples
    --------
    >>> [receptive_field(cp_resnet_layers(rho=r)).time for r in (0, 2, 5, 7, 10, 22)]
    [23, 39, 87, 135, 231, 615]
    >>> receptive_field([])
    RF(freq=1, time=1)
    """
    trace = receptive_field_trace(model_or_layers)
    return trace[-1][1] if trace else RF(1, 1)


def cp_resnet_layers(
    rho: int | None = None,
    rho_f: int | None = None,
    rho_t: int | None = None,
    depth: int = 26,
) -> list[LayerSpec]:
    """Longest-path layer specs of a CP-ResNet, without building it.

    Stem (5x5, stride 2), then the two convolutions of every block (kernels
    from :func:`block_kernels`), the three 2x2 max-pools of stage 1
    (:func:`pool_positions`), and the 1x1 classifier.

    Parameters
    ----------
    rho : int, 0 <= rho <= max_rho(depth), or None
        None means :data:`DEFAULT_RHO`.
    rho_f, rho_t : int or None
        Per-axis rho; None means ``rho``.
    depth : int >= 8, of the form 6*n + 2

    Returns
    -------
    layers : list of LayerSpec [shape=(2 * n_blocks + 5,)]

    Examples
    --------
    >>> layers = cp_resnet_layers(rho=5)
    >>> len(layers), layers[0].kernel_size, layers[0].stride
    (29, (5, 5), (2, 2))
    """
    depth = _check_depth(depth)
    kernels = block_kernels(rho, rho_f, rho_t, depth)
    n = (depth - 2) // 6
    pools = pool_positions(depth)
    layers = [LayerSpec(5, stride=2, name="stem.conv")]
    for b, (k1, k2) in enumerate(kernels):
        stage, idx = b // n + 1, b % n + 1
        prefix = f"stage{stage}.block{idx}"
        layers.append(LayerSpec(k1, name=f"{prefix}.conv1"))
        layers.append(LayerSpec(k2, name=f"{prefix}.conv2"))
        if stage == 1:
            for _ in range(pools.count(idx)):
                layers.append(
                    LayerSpec(2, stride=2, kind="pool", name=f"{prefix}.pool")
                )
    layers.append(LayerSpec(1, name="head.conv"))
    return layers


# --------------------------------------------------------------------------- #
# Units: pixels -> frames, seconds, mel bins, Hz
# --------------------------------------------------------------------------- #
def _as_rf(rf):
    if isinstance(rf, RF):
        return rf
    if isinstance(rf, numbers.Integral) and not isinstance(rf, bool):
        rf = (int(rf), int(rf))
    try:
        f, t = rf
        return RF(
            _check_int("rf.freq", f, minimum=1), _check_int("rf.time", t, minimum=1)
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ParameterError):
            raise
        raise ParameterError(
            f"rf={rf!r} must be an RF(freq, time), a (freq, time) pair or an int "
            "number of pixels, e.g. receptive_field(model)."
        ) from None


@dataclass(frozen=True)
class RFDescription:
    """A receptive field in spectrogram pixels, seconds and Hz.

    Attributes
    ----------
    rf : RF
        The RF in pixels (mel bins, frames).
    sr, hop_length, n_mels : int
    fmin, fmax : float
        The spectrogram configuration the units refer to.
    time_frames : int
        RF along time, in STFT frames.
    time_seconds : float
        ``time_frames * hop_length / sr``.
    freq_bins : int
        RF along frequency, in mel bins (may exceed ``n_mels``).
    freq_fraction : float
        Fraction of the mel axis one unit sees, ``min(freq_bins, n_mels) / n_mels``.
    hz_spans : dict of str to (float, float)
        For ``"low"``, ``"mid"`` and ``"high"``: the lowest and highest
        frequency (Hz, filter edges) covered by ``freq_bins`` mel bands
        centred on the lowest, middle and highest band, clipped to the axis.

    Examples
    --------
    >>> d = describe_receptive_field(receptive_field(cp_resnet_layers(rho=5)),
    ...                              sr=22050, hop_length=512, n_mels=256)
    >>> d.time_frames, round(d.time_seconds, 2), d.freq_bins
    (87, 2.02, 87)
    """

    rf: RF
    sr: int
    hop_length: int
    n_mels: int
    fmin: float
    fmax: float
    time_frames: int
    time_seconds: float
    freq_bins: int
    freq_fraction: float
    hz_spans: dict

    def summary_lines(self, seconds_digits=2):
        """The time and frequency extent as ``(depth, text)`` lines.

        Depth 0: the time and the frequency extent; depth 1 under the
        frequency: the Hz span centred on the lowest, middle and highest band.
        ``str(self)`` and the model card both render these.

        Examples
        --------
        >>> d = describe_receptive_field(receptive_field(cp_resnet_layers(rho=5)),
        ...                              sr=22050, hop_length=512, n_mels=256)
        >>> d.summary_lines()[0]
        (0, 'time: 87 frames = 2.02 s (sr=22050, hop_length=512)')
        """
        lines = [
            (
                0,
                f"time: {self.time_frames} frames = "
                f"{self.time_seconds:.{seconds_digits}f} s "
                f"(sr={self.sr}, hop_length={self.hop_length})",
            ),
            (
                0,
                f"freq: {self.freq_bins} of {self.n_mels} mel bins "
                f"({100 * self.freq_fraction:.0f}% of the axis, "
                f"fmin={self.fmin:g} Hz, fmax={self.fmax:g} Hz)",
            ),
        ]
        for key, label in (("low", "lowest"), ("mid", "middle"), ("high", "highest")):
            lo, hi = self.hz_spans[key]
            lines.append(
                (
                    1,
                    f"centred on the {label} band: {lo:.0f}-{hi:.0f} Hz "
                    f"({hi - lo:.0f} Hz wide)",
                )
            )
        return lines

    def __str__(self):
        head = (
            f"receptive field: {self.rf.freq} x {self.rf.time} px (mel bins x frames)"
        )
        body = ["  " * (depth + 1) + text for depth, text in self.summary_lines()]
        return "\n".join([head, *body])


def describe_receptive_field(
    rf,
    sr: float = 22050,
    hop_length: int = 512,
    n_mels: int = 256,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> RFDescription:
    """Express a receptive field in frames, seconds, mel bins and Hz.

    Along time one pixel is one STFT hop, so the RF lasts
    ``rf.time * hop_length / sr`` seconds.  Along frequency the RF covers
    ``rf.freq`` mel bands; because mel bands widen with frequency, the Hz
    span of that many bands depends on where they sit, so it is reported
    centred on the lowest, the middle and the highest band (clipped to the
    axis, as zero padding does in the network).  The span runs from the lower
    edge of the first covered band to the upper edge of the last one, with
    Slaney mel bands (librosa's default, ``htk=False``).

    Parameters
    ----------
    rf : RF, (int, int) or int >= 1
        The RF in pixels, e.g. ``receptive_field(model)`` or an estimator's
        ``receptive_field_``.
    sr : number > 0, default=22050
        Sampling rate in Hz.
    hop_length : int > 0, default=512
        STFT hop in samples.
    n_mels : int > 0, default=256
        Number of mel bands.
    fmin : float >= 0, default=0.0
        Lowest mel filter edge, Hz.
    fmax : float, fmin < fmax <= sr / 2, or None, default=None
        Highest mel filter edge, Hz; None means ``sr / 2``.

    Returns
    -------
    description : RFDescription
        With a readable ``str()``.

    Raises
    ------
    ParameterError
        On a non-positive or inconsistent spectrogram parameter.

    Examples
    --------
    >>> d = describe_receptive_field(87, sr=22050, hop_length=512, n_mels=256)
    >>> d.time_frames, round(d.time_seconds, 2), d.freq_bins
    (87, 2.02, 87)
    >>> [round(v) for v in d.hz_spans["low"]]
    [0, 583]
    >>> print(d)  # doctest: +ELLIPSIS
    receptive field: 87 x 87 px (mel bins x frames)
      time: 87 frames = 2.02 s (sr=22050, hop_length=512)
      freq: 87 of 256 mel bins (34% of the axis, fmin=0 Hz, fmax=11025 Hz)
        centred on the lowest band: 0-583 Hz (583 Hz wide)
        centred on the middle band: ...
    """
    rf = _as_rf(rf)
    if isinstance(sr, bool) or not isinstance(sr, numbers.Real) or sr <= 0:
        raise ParameterError(f"sr={sr!r} must be a positive sampling rate in Hz.")
    hop_length = _check_int("hop_length", hop_length, minimum=1)
    n_mels = _check_int("n_mels", n_mels, minimum=1)
    fmax = sr / 2.0 if fmax is None else fmax
    if not (isinstance(fmin, numbers.Real) and fmin >= 0):
        raise ParameterError(f"fmin={fmin!r} must be a frequency >= 0 Hz.")
    if not (isinstance(fmax, numbers.Real) and fmin < fmax <= sr / 2.0):
        raise ParameterError(
            f"fmax={fmax!r} must lie in (fmin, sr / 2] = ({fmin!r}, {sr / 2.0:g}]; "
            "use None for sr / 2."
        )
    edges = mel_frequencies(n_mels + 2, float(fmin), float(fmax))
    half = (rf.freq - 1) // 2
    spans = {}
    for key, centre in (("low", 0), ("mid", n_mels // 2), ("high", n_mels - 1)):
        first = max(0, centre - half)
        last = min(n_mels - 1, centre + (rf.freq - 1 - half))
        spans[key] = (float(edges[first]), float(edges[last + 2]))
    return RFDescription(
        rf=rf,
        sr=sr,
        hop_length=hop_length,
        n_mels=n_mels,
        fmin=float(fmin),
        fmax=float(fmax),
        time_frames=rf.time,
        time_seconds=rf.time * hop_length / sr,
        freq_bins=rf.freq,
        freq_fraction=min(rf.freq, n_mels) / n_mels,
        hz_spans=spans,
    )


def __getattr__(name):
    # describe_pipeline needs the front end and the estimators, so it lives a
    # layer up, in sklearn_rfcnn.inspection; this module imports nothing above
    # it (design.md, section 2), so it only points there.
    if name == "describe_pipeline":
        raise AttributeError(
            "describe_pipeline lives in sklearn_rfcnn.inspection (it reads the "
            "front end and the fitted CNN of a pipeline): use "
            "`from sklearn_rfcnn.inspection import describe_pipeline` or "
            "`sklearn_rfcnn.describe_pipeline`."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
