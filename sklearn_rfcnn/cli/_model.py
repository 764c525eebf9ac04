"""The command line's model folder: a trained CNN plus its audio front end.

``rfcnn fit`` writes, and ``rfcnn predict`` / ``rfcnn embed`` read, a folder::

    MODEL/rfcnn-model.json   front-end parameters (AudioLoader, MelSpectrogram),
                             BandStandardizer statistics (numbers), tag names
    MODEL/classifier/        RFCNNClassifier.save() output (weights + JSON)

Nothing is pickled, so a model folder from an untrusted source cannot run
code when loaded.
"""

import json
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from sklearn_rfcnn.datasets import AUDIO_EXTENSIONS

__all__ = [
    "add_frontend_args",
    "add_network_args",
    "collect_audio_paths",
    "extract_features",
    "load_clips",
    "load_model",
    "network_kwargs",
    "save_model",
]

MODEL_FILE = "rfcnn-model.json"
CLASSIFIER_DIR = "classifier"
FORMAT_NAME = "sklearn_rfcnn.cli.model"
FORMAT_VERSION = 1


def _cli_error(message):
    from sklearn_rfcnn.cli import CLIError

    return CLIError(message)


# --------------------------------------------------------------------------
# argparse helpers
# --------------------------------------------------------------------------


def add_frontend_args(p, *, duration=10.0, n_mels=256):
    """Audio loading and spectrogram options (``rfcnn fit``)."""
    g = p.add_argument_group("audio front end")
    g.add_argument(
        "--sr", type=int, default=22050, help="sampling rate in Hz (default: 22050)"
    )
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
    g.add_argument(
        "--fmax",
        type=float,
        default=None,
        help="highest mel edge in Hz (default: sr/2)",
    )
    g.add_argument(
        "--scale",
        choices=["perceptual", "db", "power"],
        default="perceptual",
        help="spectrogram scale: the papers' A-weighted 'perceptual' dB, plain "
        "log-mel 'db', or 'power' (default: perceptual)",
    )


def add_network_args(p, *, epochs=None, width=None, rho=None):
    """CP-ResNet and training options; unset ones keep RFCNNClassifier's defaults."""
    g = p.add_argument_group("network and training")

    def default_text(value, fallback):
        return f"default: {value}" if value is not None else f"default: {fallback}"

    g.add_argument(
        "--rho",
        type=int,
        default=rho,
        help="receptive-field parameter rho of CP-ResNet "
        f"({default_text(rho, 'RFCNNClassifier default, 7')})",
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
        help="base channel width "
        f"({default_text(width, 'RFCNNClassifier default, 128')})",
    )
    g.add_argument(
        "--depth", type=int, default=None, help="CP-ResNet depth 6n+2 (default: 26)"
    )
    g.add_argument(
        "--epochs",
        type=int,
        default=epochs,
        help="training epochs "
        f"({default_text(epochs, 'RFCNNClassifier default, 100')})",
    )
    g.add_argument(
        "--batch-size", type=int, default=None, help="mini-batch size (default: 32)"
    )
    g.add_argument(
        "--lr", type=float, default=None, help="Adam learning rate (default: 1e-3)"
    )
    g.add_argument(
        "--mixup-alpha",
        type=float,
        default=None,
        help="mix-up Beta parameter, 0 disables (default: 0.3)",
    )
    g.add_argument(
        "--validation-fraction",
        type=float,
        default=None,
        help="share of the training clips held out to report validation loss "
        "(default: 0.1)",
    )
    g.add_argument(
        "--device",
        default="auto",
        help="torch device: auto (CUDA when present), cpu, cuda, cuda:N "
        "(default: auto)",
    )
    g.add_argument(
        "--channels-last",
        action="store_true",
        help="run the network in torch's channels-last memory format (often "
        "faster convolutions; same results up to rounding)",
    )
    g.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seed for data splits, initialisation and augmentation (default: 0)",
    )


def network_kwargs(args):
    """``RFCNNClassifier`` keyword arguments from the options that were set."""
    mapping = {
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
    }
    kwargs = {
        param: getattr(args, opt)
        for opt, param in mapping.items()
        if getattr(args, opt, None) is not None
    }
    kwargs["device"] = args.device
    if getattr(args, "channels_last", False):
        kwargs["channels_last"] = True
    kwargs["random_state"] = args.random_state
    return kwargs


# --------------------------------------------------------------------------
# audio
# --------------------------------------------------------------------------


def collect_audio_paths(items):
    """Expand files and folders (recursively, audio extensions only) to paths."""
    paths = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(
                str(p)
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in AUDIO_EXTENSIONS
                and not p.name.startswith(".")
            )
            if not found:
                raise _cli_error(
                    f"folder {str(path)!r} holds no audio files "
                    f"({', '.join(e[1:] for e in AUDIO_EXTENSIONS)})."
                )
            paths += found
        else:
            paths.append(str(path))
    if not paths:
        raise _cli_error("no audio files given.")
    return paths


def load_clips(paths, loader, *, skip_bad, log):
    """Decode ``paths``; returns ``(waveforms, kept_indices)``.

    Without ``skip_bad`` the first missing or corrupt file raises a one-line
    error naming it; with it, bad files are left out and listed through ``log``.
    """
    import warnings

    from sklearn_rfcnn.exceptions import SkippedItemsWarning

    if not skip_bad:
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise _cli_error(
                f"audio file {missing[0]!r} does not exist{more}; fix the path or "
                "pass --skip-bad to leave missing and unreadable files out."
            )
        loader.set_params(on_error="raise")
        result = loader.fit(paths).load(paths)
    else:
        loader.set_params(on_error="skip")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedItemsWarning)
            result = loader.fit(paths).load(paths)
        for _index, item, reason in result.skipped:
            log(f"  skipped {os.fsdecode(item)}: {reason}")
        if result.skipped:
            log(f"skipped {len(result.skipped)} of {len(paths)} files (--skip-bad)")
    return result.data, result.kept


# --------------------------------------------------------------------------
# model folder
# --------------------------------------------------------------------------


def save_model(folder, *, loader, mel, standardizer, classifier, meta, overwrite):
    """Write the model folder (see the module docstring)."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MODEL_FILE).is_file():
            raise _cli_error(
                f"output folder {str(folder)!r} exists and is not an rfcnn model "
                "folder; choose a new path."
            )
        if not overwrite:
            raise _cli_error(
                f"model folder {str(folder)!r} already exists; pass --overwrite "
                "to replace it."
            )
    folder.mkdir(parents=True, exist_ok=True)
    classifier.save(folder / CLASSIFIER_DIR)
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "loader": {
            k: v for k, v in loader.get_params().items() if k not in ("n_jobs",)
        },
        "mel": {k: v for k, v in mel.get_params().items() if k not in ("n_jobs",)},
        "standardizer": {
            "mean": np.asarray(standardizer.mean_, dtype=float).tolist(),
            "scale": np.asarray(standardizer.scale_, dtype=float).tolist(),
        },
        **meta,
    }
    config["loader"]["on_error"] = "raise"
    data = json.dumps(config, indent=1).encode()
    tmp = folder / (MODEL_FILE + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, folder / MODEL_FILE)
    return folder


def load_model(folder):
    """Rebuild ``Bunch(loader, mel, standardizer, classifier, config)``."""
    from sklearn_rfcnn.estimators import RFCNNClassifier
    from sklearn_rfcnn.transformers import (
        AudioLoader,
        BandStandardizer,
        MelSpectrogram,
    )

    folder = Path(folder).expanduser()
    config_path = folder / MODEL_FILE
    if not folder.is_dir():
        raise _cli_error(f"model folder {str(folder)!r} does not exist.")
    if not config_path.is_file():
        raise _cli_error(
            f"{str(folder)!r} is not a model folder written by 'rfcnn fit' (it "
            f"has no {MODEL_FILE})."
        )
    try:
        config = json.loads(config_path.read_text())
    except ValueError as exc:
        raise _cli_error(f"{str(config_path)!r} is not valid JSON ({exc}).") from exc
    if config.get("format") != FORMAT_NAME:
        raise _cli_error(f"{str(config_path)!r} is not an rfcnn model description.")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise _cli_error(
            f"{str(config_path)!r} was written by a newer sklearn-rfcnn; upgrade."
        )
    loader = AudioLoader(**config["loader"])
    mel = MelSpectrogram(**config["mel"])
    mean = np.asarray(config["standardizer"]["mean"], dtype=np.float64)
    scale = np.asarray(config["standardizer"]["scale"], dtype=np.float64)
    # Fit on a dummy batch of the right layout, then install the saved numbers.
    standardizer = BandStandardizer().fit(
        np.zeros((2, len(mean), int(config["n_frames"])), dtype=np.float32)
    )
    standardizer.mean_, standardizer.scale_ = mean, scale
    classifier = RFCNNClassifier.load(folder / CLASSIFIER_DIR)
    return Bunch(
        loader=loader,
        mel=mel,
        standardizer=standardizer,
        classifier=classifier,
        config=config,
    )


def extract_features(model, waveforms):
    """Standardised spectrograms of ``waveforms`` with the model's front end."""
    return model.standardizer.transform(model.mel.fit(waveforms).transform(waveforms))
