"""Reading a finished (or running) study: best trials, RF in seconds, plots."""

import json
import math
import os
import re
import warnings
from pathlib import Path

from sklearn_rfcnn.search._spaces import _import_optuna

__all__ = ["receptive_field_seconds", "report_study"]

_RHO = re.compile(r"(?:^|__)(rho|rho_t|rho_f|depth)$")


def _rf_params(params, defaults):
    """Pick rho / rho_t / rho_f / depth out of (prefixed) trial parameters."""
    found = dict(defaults)
    for key, value in params.items():
        m = _RHO.search(key)
        if m:
            found[m.group(1)] = value
    return found


def receptive_field_seconds(params, *, sr=22050, hop_length=512, depth=None):
    """Receptive field of a trial's CP-ResNet along time, in frames and seconds.

    Parameters
    ----------
    params : dict
        Trial parameters (any prefix): ``rho`` or ``rho_t`` (and optionally
        ``rho_f``, ``depth``).
    sr : float, default=22050
        Sampling rate of the audio the spectrograms came from.
    hop_length : int, default=512
        STFT hop in samples: one spectrogram frame.
    depth : int or None, default=None
        Network depth when ``params`` does not hold one; None (also as a
        value in ``params``, the estimators' default) is CP-ResNet's own
        default depth.

    Returns
    -------
    frames : int or None
        Exact maximum RF along time in spectrogram frames (None without rho).
    seconds : float or None
        The same in seconds: ``frames * hop_length / sr``.

    Examples
    --------
    >>> receptive_field_seconds({"clf__rho": 5})
    (87, 2.02)
    >>> receptive_field_seconds({"rho_t": 7, "rho_f": 2}, sr=44100)
    (135, 1.567)
    >>> receptive_field_seconds({"clf__rho": 5, "clf__depth": None})
    (87, 2.02)
    """
    from sklearn_rfcnn.receptive_field import (
        cp_resnet_layers,
        describe_receptive_field,
        receptive_field,
    )

    p = _rf_params(params, {"depth": depth})
    rho_t = p.get("rho_t", p.get("rho"))
    if rho_t is None:
        return None, None
    rho = p.get("rho", rho_t)
    # depth None (RFCNNClassifier's default) is the network's own default
    kwargs = {} if p["depth"] is None else {"depth": int(p["depth"])}
    layers = cp_resnet_layers(rho, rho_f=p.get("rho_f", rho), rho_t=rho_t, **kwargs)
    # Only the time axis is reported, so the mel settings do not matter here.
    desc = describe_receptive_field(
        receptive_field(layers), sr=sr, hop_length=hop_length
    )
    return int(desc.time_frames), round(desc.time_seconds, 3)


def _importances(study):
    optuna = _import_optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return optuna.importance.get_param_importances(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            return {"error": str(exc)}


def report_study(
    study, output_dir=None, *, sr=22050, hop_length=512, depth=None, top=5
):
    """Summarise a study and, with ``output_dir``, write PNG plots and JSON.

    Parameters
    ----------
    study : optuna.Study
    output_dir : path-like, default=None
        Where ``optimization_history.png``, ``param_importances.png``,
        ``score_vs_receptive_field.png`` and ``summary.json`` go (created).
    sr, hop_length : see :func:`receptive_field_seconds`
        Taken from the study's ``rfcnn:sr`` / ``rfcnn:hop_length`` user
        attributes when the worker stored them.
    depth : int or None, default=None
        CP-ResNet depth of the trials' networks (None: the network's default),
        for trials whose parameters hold no depth; the study's ``rfcnn:depth``
        user attribute, which ``rfcnn tune`` stores, takes precedence.
    top : int, default=5
        Number of best trials listed.

    Returns
    -------
    summary : dict
        ``study_name``, ``states`` (count per state), ``best`` and ``top``
        (trial number, score, params, RF frames and seconds),
        ``importances`` and ``plots`` (written paths).

    Examples
    --------
    >>> import optuna
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(direction="maximize")
    >>> study.optimize(lambda t: -abs(t.suggest_int("rho", 3, 10) - 6), n_trials=5)
    >>> summary = report_study(study)
    >>> summary["states"]
    {'COMPLETE': 5}
    >>> summary["best"]["rf_frames"] > 0
    True
    """
    optuna = _import_optuna()
    TrialState = optuna.trial.TrialState
    attrs = study.user_attrs
    sr = attrs.get("rfcnn:sr", sr)
    hop_length = attrs.get("rfcnn:hop_length", hop_length)
    depth = attrs.get("rfcnn:depth", depth)  # None: the network's default depth
    trials = study.get_trials(deepcopy=False)
    states = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    complete.sort(key=lambda t: t.value, reverse=True)

    def row(t):
        frames, seconds = receptive_field_seconds(
            t.params, sr=sr, hop_length=hop_length, depth=depth
        )
        return {
            "number": t.number,
            "score": t.value,
            "params": t.params,
            "rf_frames": frames,
            "rf_seconds": seconds,
        }

    summary = {
        "study_name": study.study_name,
        "states": states,
        "best": row(complete[0]) if complete else None,
        "top": [row(t) for t in complete[:top]],
        "importances": _importances(study) if len(complete) >= 2 else {},
        "plots": [],
    }
    if output_dir is not None:
        out = Path(os.fspath(output_dir))
        out.mkdir(parents=True, exist_ok=True)
        summary["plots"] = _plots(study, complete, summary, out, sr, hop_length, depth)
        with open(out / "summary.json", "w") as fh:
            json.dump(summary, fh, indent=2, default=str)
    return summary


def _plots(study, complete, summary, out, sr, hop_length, depth):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    written = []
    by_number = sorted(complete, key=lambda t: t.number)

    fig, ax = plt.subplots(figsize=(6, 4))
    if by_number:
        xs = [t.number for t in by_number]
        ys = [t.value for t in by_number]
        best = [max(ys[: i + 1]) for i in range(len(ys))]
        ax.plot(xs, ys, "o", label="trial score")
        ax.step(xs, best, where="post", label="best so far")
        ax.legend()
    ax.set_xlabel("trial")
    ax.set_ylabel("cross-validated score")
    ax.set_title(f"Optimisation history: {study.study_name}")
    written.append(_save(fig, out / "optimization_history.png", plt))

    fig, ax = plt.subplots(figsize=(6, 4))
    imp = {
        k: v for k, v in summary["importances"].items() if isinstance(v, int | float)
    }
    if imp:
        names = list(imp)[::-1]
        ax.barh(names, [imp[n] for n in names])
        ax.set_xlabel("importance")
    else:
        reason = summary["importances"].get("error", "needs two complete trials")
        ax.text(0.5, 0.5, f"no importances: {reason}", ha="center", wrap=True)
    ax.set_title("Parameter importances")
    fig.tight_layout()
    written.append(_save(fig, out / "param_importances.png", plt))

    fig, ax = plt.subplots(figsize=(6, 4))
    points = []
    for t in by_number:
        _, seconds = receptive_field_seconds(
            t.params, sr=sr, hop_length=hop_length, depth=depth
        )
        if seconds is not None and math.isfinite(t.value):
            points.append((seconds, t.value))
    if points:
        ax.scatter(*zip(*points))
    else:
        ax.text(0.5, 0.5, "no rho in the trials' parameters", ha="center")
    ax.set_xlabel(f"receptive field along time (s; sr={sr}, hop={hop_length})")
    ax.set_ylabel("cross-validated score")
    ax.set_title("Score against receptive field")
    written.append(_save(fig, out / "score_vs_receptive_field.png", plt))
    return written


def _save(fig, path, plt):
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return str(path)
