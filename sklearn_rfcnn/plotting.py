"""Plots of training curves, per-tag scores and the receptive field to scale.

Each function draws on a new matplotlib :class:`~matplotlib.figure.Figure`
(no pyplot state, so it is safe in scripts, servers and tests), saves it when
``path`` is given, and returns it.  matplotlib is an optional dependency
(``pip install 'sklearn-rfcnn[plot]'``), imported only when a plot is drawn.

Examples
--------
>>> from sklearn_rfcnn.plotting import plot_training_curve
>>> fig = plot_training_curve([{"epoch": 1, "train_loss": 0.7},
...                            {"epoch": 2, "train_loss": 0.5}])
>>> fig.axes[0].get_xlabel()
'epoch'
"""

import numpy as np

from sklearn_rfcnn.utils._docstrings import fill_doc

__all__ = ["plot_per_tag_scores", "plot_receptive_field", "plot_training_curve"]


#: The ``path`` parameter and the return value of every plot (docstrings).
_PATH_AND_FIGURE_DOC = """
path : str or path-like, default=None
    Where to save the figure (format from the suffix, e.g. ``.png``); None
    saves nothing.

Returns
-------
fig : matplotlib.figure.Figure
    The figure (a ``matplotlib.figure.Figure`` without pyplot, so nothing is
    shown or kept open).
"""


def _figure(figsize):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib; install it with "
            "pip install 'sklearn-rfcnn[plot]'."
        ) from None
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


@fill_doc(path_and_figure=_PATH_AND_FIGURE_DOC)
def plot_training_curve(
    history, *, ylabel="loss", title="CP-ResNet training curve", path=None
):
    """Training and validation loss per epoch.

    Parameters
    ----------
    history : sequence of dict
        One row per epoch with ``"epoch"`` and any of ``"train_loss"``,
        ``"valid_loss"``, e.g. an estimator's ``history_`` (skorch's history).
    ylabel : str, default="loss"
        Label of the loss axis (e.g. ``"binary cross-entropy"``).
    title : str, default="CP-ResNet training curve"
        Figure title.
    %(path_and_figure)s

    Examples
    --------
    >>> fig = plot_training_curve(
    ...     [{"epoch": 1, "train_loss": 0.9, "valid_loss": 1.0},
    ...      {"epoch": 2, "train_loss": 0.6, "valid_loss": 0.8}])
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['training loss', 'validation loss']
    """
    fig = _figure((6, 4))
    ax = fig.add_subplot()
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    for key, label in (
        ("train_loss", "training loss"),
        ("valid_loss", "validation loss"),
    ):
        values = [row.get(key) for row in history]
        if any(v is not None for v in values):
            ax.plot(
                epochs,
                [np.nan if v is None else v for v in values],
                "o-",
                label=label,
                markersize=3,
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


@fill_doc(path_and_figure=_PATH_AND_FIGURE_DOC)
def plot_per_tag_scores(
    scores,
    target_names,
    *,
    chance=None,
    ylabel="average precision (test clips)",
    title="Per-tag average precision",
    path=None,
):
    """Grouped bars of one score per tag for several models.

    Parameters
    ----------
    scores : dict of str to array-like of shape (n_tags,)
        Model name to its per-tag scores (NaN, e.g. for a tag without a
        positive test clip, is drawn as 0).
    target_names : sequence of str of length n_tags
        Tag names, in the order of the scores.
    chance : array-like of shape (n_tags,), default=None
        A per-tag chance level drawn as a dashed line (for average precision:
        the share of positive test clips).
    ylabel : str, default="average precision (test clips)"
        Label of the score axis.
    title : str, default="Per-tag average precision"
        Figure title.
    %(path_and_figure)s

    Examples
    --------
    >>> fig = plot_per_tag_scores({"cnn": [0.9, 0.7], "mfcc": [0.6, float("nan")]},
    ...                           ["piano", "drums"], chance=[0.3, 0.5])
    >>> len(fig.axes[0].patches)
    4
    """
    fig = _figure((max(6, 0.55 * len(target_names) + 2), 4.5))
    ax = fig.add_subplot()
    x = np.arange(len(target_names))
    n = len(scores)
    width = 0.8 / n
    for k, (name, values) in enumerate(scores.items()):
        ax.bar(
            x + (k - (n - 1) / 2) * width,
            np.nan_to_num(np.asarray(values, dtype=float)),
            width,
            label=name,
        )
    if chance is not None:
        ax.hlines(
            chance,
            x - 0.45,
            x + 0.45,
            colors="black",
            linestyles="dashed",
            label="chance (share of positive test clips)",
        )
    ax.set_xticks(x, list(target_names), rotation=45, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.22)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper center", ncol=2)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


@fill_doc(path_and_figure=_PATH_AND_FIGURE_DOC)
def plot_receptive_field(spectrogram, description, *, subtitle=None, path=None):
    """A spectrogram with the network's receptive field drawn to scale.

    Parameters
    ----------
    spectrogram : array-like of shape (n_mels, n_frames)
        One clip's mel spectrogram.
    description : RFDescription
        From :func:`~sklearn_rfcnn.receptive_field.describe_receptive_field`
        or :func:`~sklearn_rfcnn.inspection.describe_pipeline`, for the same
        spectrogram settings.
    subtitle : str, default=None
        A second title line (e.g. the clip's tags).
    %(path_and_figure)s

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_rfcnn.receptive_field import describe_receptive_field
    >>> d = describe_receptive_field(39, sr=22050, hop_length=512, n_mels=40)
    >>> fig = plot_receptive_field(np.zeros((40, 65)), d, subtitle="piano")
    >>> fig.axes[0].patches[0].get_width()
    39
    """
    from matplotlib.patches import Rectangle

    from sklearn_rfcnn.receptive_field import mel_frequencies

    spec = np.asarray(spectrogram)
    n_mels, n_frames = spec.shape
    rf_t, rf_f = description.time_frames, description.freq_bins
    fig = _figure((8, 4.8))
    ax = fig.add_subplot()
    ax.imshow(
        spec,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0, n_frames, 0, n_mels),
        interpolation="nearest",
    )
    t0 = n_frames / 2 - rf_t / 2
    f0 = n_mels / 2 - rf_f / 2
    ax.add_patch(
        Rectangle(
            (t0, f0),
            rf_t,
            rf_f,
            fill=False,
            edgecolor="cyan",
            linewidth=2,
            linestyle="-",
        )
    )
    ax.set_xlim(min(0, t0) - 1, max(n_frames, t0 + rf_t) + 1)
    ax.set_ylim(min(0, f0) - 1, max(n_mels, f0 + rf_f) + 1)
    secs = description.hop_length / description.sr
    ticks = np.arange(0, n_frames * secs + 1e-9, 0.5)
    ax.set_xticks(ticks / secs, [f"{t:g}" for t in ticks])
    ax.set_xlabel(f"time (s); one frame = {1000 * secs:.1f} ms")
    edges = mel_frequencies(n_mels + 2, description.fmin, description.fmax)
    yt = np.linspace(0, n_mels - 1, 6).astype(int)
    ax.set_yticks(yt + 0.5, [f"{edges[i + 1]:.0f}" for i in yt])
    ax.set_ylabel("frequency (Hz, mel scale)")
    lo = description.hz_spans["low"]
    mid = description.hz_spans["mid"]
    title = (
        f"Receptive field {rf_f} mel bins x {rf_t} frames "
        f"({description.time_seconds:.2f} s; {mid[0]:.0f}-{mid[1]:.0f} Hz around "
        f"the middle band, {lo[0]:.0f}-{lo[1]:.0f} Hz at the bottom)"
    )
    if subtitle is not None:
        title += f"\n{subtitle}"
    ax.set_title(title, fontsize="small")
    return _save(fig, path)
