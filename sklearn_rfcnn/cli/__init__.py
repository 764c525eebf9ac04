"""The ``rfcnn`` command line.

Each subcommand lives in its own private module that declares ``HELP`` and
``DESCRIPTION`` and defines ``add_arguments(parser)`` and ``run(args)``;
:func:`build_parser` registers them all the same way, in the help order of
:data:`SUBCOMMANDS`.  Expected failures (errors the library raises on
bad input, unwritable or special paths, damaged model folders) are printed as
one clear line and exit with status 2, never as a traceback; ``--debug``
(before or after the subcommand) shows the traceback.
"""

import argparse
import importlib
import os
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


_DEBUG_HELP = "show the full traceback of an error instead of one line"


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
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, module_name in SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # subcommand not shipped yet
                continue
            raise
        sub_parser = sub.add_parser(
            _name, help=module.HELP, description=module.DESCRIPTION
        )
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(run=module.run)
        # also after the subcommand; SUPPRESS keeps a leading --debug
        sub_parser.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help=_DEBUG_HELP,
        )
    return parser


def _one_line(exc):
    """The message of ``exc`` on one line, with the file of an OSError."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        if exc.filename is not None:
            text += f": {os.fsdecode(exc.filename)!r}"
        if exc.filename2 is not None:
            text += f" -> {os.fsdecode(exc.filename2)!r}"
    elif isinstance(exc, UnicodeDecodeError):
        text = (
            f"a file is not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "save it as UTF-8"
        )
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _failure(command, exc):
    """The one-line message and the exit status of a failed subcommand."""
    from sklearn_rfcnn.exceptions import RFCNNError

    prefix = f"rfcnn {command}: error:"
    if isinstance(exc, KeyboardInterrupt):
        return f"rfcnn {command}: interrupted", 130
    if isinstance(exc, ImportError):
        return (
            f"{prefix} {_one_line(exc)} (install the optional extra "
            "that provides it, e.g. pip install 'sklearn-rfcnn[tune,data,plot]')",
            2,
        )
    # ValueError covers scikit-learn's InvalidParameterError and decoding
    # errors; OSError unwritable, special or vanished paths.
    if isinstance(exc, CLIError | RFCNNError | OSError | ValueError | MemoryError):
        return f"{prefix} {_one_line(exc)}", 2
    return (
        f"{prefix} unexpected {type(exc).__name__}: {_one_line(exc)} (rerun "
        "with --debug to see the traceback, and please report it)",
        1,
    )


def main(argv=None):
    """Run the ``rfcnn`` command line; returns the exit status.

    Expected failures (bad input, unwritable output, a damaged model folder,
    a missing optional dependency) print one line on standard error and
    return 2; ``--debug`` shows the traceback instead.  An unexpected error
    also prints one line (with a hint to rerun with ``--debug``) and
    returns 1; Ctrl-C returns 130.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False))
    try:
        status = args.run(args)
    except (KeyboardInterrupt, Exception) as exc:
        if debug:
            raise
        message, code = _failure(args.command, exc)
        print(message, file=sys.stderr)
        return code
    return 0 if status is None else int(status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
