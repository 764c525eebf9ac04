"""Command-line options shared by several subcommands, each declared once.

Every option that more than one subcommand takes is defined here, so its
spelling, type and meaning cannot drift apart between subcommands; older
spellings stay as aliases (``--max-epochs`` for ``--epochs``, ``--seed`` for
``--random-state``).  Only the default and the help's wording of what the
option seeds or counts may differ per subcommand.
"""

import argparse
import re

__all__ = [
    "add_device_args",
    "add_epochs",
    "add_frontend_args",
    "add_network_args",
    "add_random_state",
    "add_sr",
    "channels_last_param",
    "check_options",
    "frontend_flags",
    "frontend_kwargs",
    "network_flags",
    "network_kwargs",
    "sample_rate",
]

#: ``add_network_args`` option (argparse dest) -> RFCNNClassifier parameter.
_NETWORK_OPTIONS = {
    "rho": "rho",
    "rho_f": "rho_f",
    "rho_t": "rho_t",
    "width": "width",
    "depth": "depth",
    "epochs": "max_epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "mixup_alpha": "mixup_alpha",
    "validation_fraction": "validation_fraction",
    "crop_frames": "crop_frames",
    "device": "device",
    "precision": "precision",
    "channels_last": "channels_last",
    "random_state": "random_state",
}

#: ``add_frontend_args`` options: AudioLoader / MelSpectrogram parameters.
_FRONTEND_OPTIONS = ("sr", "duration", "n_fft", "hop_length", "n_mels")
_FRONTEND_OPTIONS += ("fmin", "fmax", "scale")


def _flag(dest):
    return "--" + dest.replace("_", "-")


def network_flags():
    """RFCNNClassifier parameter -> the option of ``add_network_args`` setting it."""
    return {param: _flag(dest) for dest, param in _NETWORK_OPTIONS.items()}


def frontend_flags():
    """Front-end parameter -> the option of ``add_frontend_args`` setting it."""
    return {name: _flag(name) for name in _FRONTEND_OPTIONS}


def check_options(estimator, flags):
    """Pre-flight of every parameter, before any data is read.

    :func:`sklearn_rfcnn.check_params` on ``estimator``; its error becomes a
    one-line CLI error that starts with the command-line options whose
    parameters the message names (``flags``: parameter -> option).
    """
    from sklearn_rfcnn.cli import CLIError
    from sklearn_rfcnn.exceptions import ParameterError
    from sklearn_rfcnn.utils._validation import check_params

    try:
        check_params(estimator)
    except ParameterError as exc:
        text = str(exc)
        named = [
            flag
            for param, flag in flags.items()
            if re.search(rf"(?<![\w-]){re.escape(param)}(?!\w)", text)
        ]
        named = list(dict.fromkeys(named))  # in order, once each
        lead = f"{', '.join(named)}: " if named else ""
        raise CLIError(f"{lead}{text}") from None


def sample_rate(text):
    """argparse type of ``--sr``: a positive number of Hz, an int when whole."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a sampling rate in Hz (e.g. 22050)"
        ) from None
    from sklearn_rfcnn.transformers._loader import MIN_SAMPLE_RATE

    if not value >= MIN_SAMPLE_RATE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is below {MIN_SAMPLE_RATE} Hz; give the audio's sampling "
            "rate in Hz (e.g. 22050)"
        )
    return int(value) if value.is_integer() else value


def add_sr(group, *, default=22050):
    """``--sr``: sampling rate in Hz (one definition for every subcommand)."""
    group.add_argument(
        "--sr",
        type=sample_rate,
        default=default,
        help=f"sampling rate in Hz (default: {default})",
    )


def add_epochs(group, *, default=None, default_text=None, what="training epochs"):
    """``--epochs`` (alias ``--max-epochs``): the estimators' ``max_epochs``."""
    shown = default_text if default_text is not None else default
    group.add_argument(
        "--epochs",
        "--max-epochs",
        dest="epochs",
        type=int,
        default=default,
        help=f"{what} (default: {shown})",
    )


def add_random_state(group, *, default=0, what="the run"):
    """``--random-state`` (alias ``--seed``): an int seed."""
    group.add_argument(
        "--random-state",
        "--seed",
        dest="random_state",
        type=int,
        default=default,
        help=f"seed of {what} (default: {default})",
    )


def add_device_args(group, *, what="run"):
    """``--device``, ``--precision`` and ``--channels-last``."""
    group.add_argument(
        "--device",
        default="auto",
        help="torch device: auto (CUDA when present), cpu, cuda, cuda:N "
        "(default: auto)",
    )
    group.add_argument(
        "--precision",
        choices=["auto", "32", "bf16", "16"],
        default="auto",
        help="autocast precision; auto: bf16 on a CPU with native bf16 (AMX, "
        "AVX-512-BF16) or a GPU, float32 elsewhere (default: auto)",
    )
    group.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"{what} in torch's channels-last memory format (often faster "
        "convolutions; same results up to rounding); default: decided from "
        "the hardware (on with bf16, on AVX-512 CPUs and mixed-precision GPUs)",
    )


def channels_last_param(args):
    """The estimator's ``channels_last`` from ``--[no-]channels-last``."""
    value = getattr(args, "channels_last", None)
    return "auto" if value is None else bool(value)


def add_frontend_args(p, *, duration=10.0, n_mels=256):
    """Audio loading and spectrogram options (``rfcnn fit``)."""
    g = p.add_argument_group("audio front end")
    add_sr(g)
    g.add_argument(
        "--duration",
        type=float,
        default=duration,
        help="clip length in seconds: longer files are cut, shorter ones "
        f"zero-padded (default: {duration:g})",
    )
    g.add_argument(
        "--n-fft", type=int, default=2048, help="STFT window in samples (default: 2048)"
    )
    g.add_argument(
        "--hop-length", type=int, default=512, help="STFT hop in samples (default: 512)"
    )
    g.add_argument(
        "--n-mels",
        type=int,
        default=n_mels,
        help=f"number of mel bands (default: {n_mels})",
    )
    g.add_argument(
        "--fmin", type=float, default=0.0, help="lowest mel edge in Hz (default: 0)"
    )
    g.add_argument("--fmax", type=float, help="highest mel edge in Hz (default: sr/2)")
    g.add_argument(
        "--scale",
        choices=["perceptual", "db", "power"],
        default="perceptual",
        help="spectrogram scale: the papers' A-weighted 'perceptual' dB, plain "
        "log-mel 'db', or 'power' (default: perceptual)",
    )


def frontend_kwargs(args):
    """``(AudioLoader kwargs, MelSpectrogram kwargs)`` from the front-end options."""
    loader = {"sr": args.sr, "duration": args.duration}
    mel = {
        "sr": args.sr,
        "n_fft": args.n_fft,
        "hop_length": args.hop_length,
        "n_mels": args.n_mels,
        "fmin": args.fmin,
        "fmax": args.fmax,
        "scale": args.scale,
    }
    return loader, mel


def add_network_args(p, *, epochs=None, width=None, rho=None):
    """CP-ResNet and training options; unset ones keep RFCNNClassifier's defaults."""
    g = p.add_argument_group("network and training")

    def default_text(value):
        return value if value is not None else "RFCNNClassifier's default"

    g.add_argument(
        "--rho",
        type=int,
        default=rho,
        help="receptive-field parameter rho of CP-ResNet "
        f"(default: {default_text(rho)})",
    )
    g.add_argument(
        "--rho-f", type=int, default=None, help="rho along frequency only (optional)"
    )
    g.add_argument(
        "--rho-t", type=int, default=None, help="rho along time only (optional)"
    )
    g.add_argument(
        "--width",
        type=int,
        default=width,
        help=f"base channel width (default: {default_text(width)})",
    )
    g.add_argument(
        "--depth", type=int, default=None, help="CP-ResNet depth 6n+2 (default: 26)"
    )
    add_epochs(g, default=epochs, default_text=default_text(epochs))
    g.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="mini-batch size (default: RFCNNClassifier's)",
    )
    g.add_argument(
        "--lr",
        type=float,
        default=None,
        help="peak learning rate (default: RFCNNClassifier's)",
    )
    g.add_argument(
        "--crop-frames",
        type=int,
        default=None,
        help="train on random crops of this many frames and predict with "
        "sliding windows of that length (full-length tracks; default: whole "
        "clips)",
    )
    g.add_argument(
        "--mixup-alpha",
        type=float,
        default=None,
        help="mix-up Beta parameter, 0 disables (default: RFCNNClassifier's)",
    )
    g.add_argument(
        "--validation-fraction",
        type=float,
        default=None,
        help="share of the training clips held out to report validation loss "
        "(default: RFCNNClassifier's)",
    )
    add_device_args(g, what="run the network")
    add_random_state(g, default=0, what="data splits, initialisation and augmentation")


def network_kwargs(args):
    """``RFCNNClassifier`` keyword arguments from the options that were set."""
    kwargs = {
        param: getattr(args, opt)
        for opt, param in _NETWORK_OPTIONS.items()
        if getattr(args, opt, None) is not None
    }
    kwargs["device"] = args.device
    kwargs["channels_last"] = channels_last_param(args)
    kwargs["precision"] = getattr(args, "precision", "auto")
    kwargs["random_state"] = args.random_state
    return kwargs
