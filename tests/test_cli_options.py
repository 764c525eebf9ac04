"""Shared CLI options: ``--precision`` and ``--[no-]channels-last``."""

import argparse

import pytest

from sklearn_rfcnn.cli._options import add_device_args, channels_last_param


def _parse(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    add_device_args(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], "auto"),
        (["--channels-last"], True),
        (["--no-channels-last"], False),
        # a flag before the positional does not swallow it
        (["--channels-last", "folder"], True),
    ],
)
def test_channels_last_flag(argv, expected):
    args = _parse(argv + (["folder"] if "folder" not in argv else []))
    assert args.data == "folder"
    assert channels_last_param(args) == expected


def test_precision_flag():
    assert _parse(["folder"]).precision == "auto"
    assert _parse(["folder", "--precision", "bf16"]).precision == "bf16"
    with pytest.raises(SystemExit):
        _parse(["folder", "--precision", "64"])
