"""Shared CLI options: ``--precision`` and ``--[no-]channels-last``."""

import argparse

import pytest

from sklearn_rfcnn.cli._options import (
    add_device_args,
    add_network_args,
    channels_last_param,
    network_kwargs,
)


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


def test_crop_frames_reaches_the_estimator():
    from sklearn_rfcnn import RFCNNClassifier

    parser = argparse.ArgumentParser()
    add_network_args(parser)
    kwargs = network_kwargs(parser.parse_args(["--crop-frames", "128"]))
    assert kwargs["crop_frames"] == 128
    assert RFCNNClassifier(**kwargs).crop_frames == 128
    assert "crop_frames" not in network_kwargs(parser.parse_args([]))
