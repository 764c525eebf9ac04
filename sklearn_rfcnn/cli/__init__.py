"""The ``rfcnn`` command line.

Each subcommand lives in its own private module that defines
``add_parser(subparsers)`` and a ``run(args)`` function; :data:`SUBCOMMANDS`
lists them in help order.  Errors the library raises on bad input are printed
as one clear line and exit with status 2, never as a traceback.
"""

import argparse
import importlib
import sys

from sklearn_rfcnn._version import __version__

__all__ = ["main"]

#: ``(name, module)`` of every subcommand, in the order ``--help`` lists them.
SUBCOMMANDS = [
    ("demo", "sklearn_rfcnn.cli._demo"),
    ("fit", "sklearn_rfcnn.cli._fit"),
    ("predict", "sklearn_rfcnn.cli._predict"),
    ("embed", "sklearn_rfcnn.cli._embed"),
    ("tune", "sklearn_rfcnn.cli._tune"),
    ("rf", "sklearn_rfcnn.cli._rf"),
    ("export", "sklearn_rfcnn.cli._export"),
]


class CLIError(Exception):
    """A user error on the command line: printed as one line, exit status 2."""


def build_parser():
    """Build the ``rfcnn`` argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="rfcnn",
        description="Receptive-field regularised CNNs for music classification "
        "and tagging (sklearn-rfcnn).",
    )
    parser.add_argument(
        "--version", action="version", version=f"sklearn-rfcnn {__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, module_name in SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # subcommand not shipped yet
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv=None):
    """Run the ``rfcnn`` command line; returns the exit status."""
    from sklearn_rfcnn.exceptions import RFCNNError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        status = args.run(args)
    except (CLIError, RFCNNError, FileNotFoundError) as exc:
        print(f"rfcnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(
            f"rfcnn {args.command}: error: {exc} (install the optional extra "
            "that provides it, e.g. pip install 'sklearn-rfcnn[tune,data,plot]')",
            file=sys.stderr,
        )
        return 2
    return 0 if status is None else int(status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
