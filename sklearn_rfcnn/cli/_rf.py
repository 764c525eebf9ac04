"""``rfcnn rf``: print the receptive field of a configuration in px, s and Hz.

For ``--arch cp_resnet`` (the default) the RF comes from the pure arithmetic
in :mod:`sklearn_rfcnn.receptive_field`, so no network is built and torch is
not imported; other architectures are built (tiny width) and asked for their
``rf_layers()``.
"""

from sklearn_rfcnn.cli._options import add_sr
from sklearn_rfcnn.receptive_field import (
    DEFAULT_RHO,
    cp_resnet_layers,
    describe_receptive_field,
    receptive_field,
    resolve_rho,
)

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]


#: ``rfcnn rf --help``: the one-line help and the description.
HELP = "print the receptive field of a configuration in pixels, seconds, Hz"
DESCRIPTION = (
    "Print the exact maximum receptive field of a network "
    "configuration in spectrogram pixels, frames/seconds and mel bins/Hz."
)


def add_arguments(p):
    """Add the arguments of ``rfcnn rf`` to its parser."""
    p.add_argument(
        "--arch",
        default="cp_resnet",
        help="registered model name (default: cp_resnet; see sklearn_rfcnn.models)",
    )
    p.add_argument(
        "--rho", type=int, default=None, help=f"CP-ResNet rho (default: {DEFAULT_RHO})"
    )
    p.add_argument("--rho-f", type=int, default=None, help="rho along frequency")
    p.add_argument("--rho-t", type=int, default=None, help="rho along time")
    p.add_argument(
        "--depth", type=int, default=26, help="CP-ResNet depth, 6n+2 (default: 26)"
    )
    add_sr(p)
    p.add_argument("--hop-length", type=int, default=512, help="STFT hop in samples")
    p.add_argument("--n-mels", type=int, default=256, help="number of mel bands")
    p.add_argument("--fmin", type=float, default=0.0, help="lowest mel edge, Hz")
    p.add_argument(
        "--fmax", type=float, default=None, help="highest mel edge, Hz (default sr/2)"
    )


def _rf_of(args):
    if args.arch == "cp_resnet":
        return receptive_field(
            cp_resnet_layers(args.rho, args.rho_f, args.rho_t, args.depth)
        )
    from sklearn_rfcnn.exceptions import ParameterError
    from sklearn_rfcnn.models import create_model

    cp_only = [
        f"--{name.replace('_', '-')}"
        for name, default in (
            ("rho", None),
            ("rho_f", None),
            ("rho_t", None),
            ("depth", 26),
        )
        if getattr(args, name) != default
    ]
    if cp_only:
        raise ParameterError(
            f"{', '.join(cp_only)} {'applies' if len(cp_only) == 1 else 'apply'} "
            f"only to --arch cp_resnet, not "
            f"--arch {args.arch}; drop them."
        )
    return receptive_field(create_model(args.arch, width=1))


def run(args):
    """Print the description; library errors propagate to the CLI's one-line handler."""
    rf = _rf_of(args)
    desc = describe_receptive_field(
        rf,
        sr=args.sr,
        hop_length=args.hop_length,
        n_mels=args.n_mels,
        fmin=args.fmin,
        fmax=args.fmax,
    )
    if args.arch == "cp_resnet":
        base, rf_, rt = resolve_rho(args.rho, args.rho_f, args.rho_t)
        if args.rho_f is None and args.rho_t is None:
            rho = f"rho={base}"
        else:
            rho = f"rho_f={rf_}, rho_t={rt}"
        print(f"cp_resnet ({rho}, depth={args.depth})")
    else:
        print(args.arch)
    print(desc)
    return 0
