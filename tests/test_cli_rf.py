"""Tests for ``rfcnn rf``."""

import pytest

from sklearn_rfcnn.cli import main


def run_cli(capsys, *argv):
    status = main(["rf", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_rf_pixels_seconds_hz(capsys):
    status, out, err = run_cli(
        capsys, "--rho", "7", "--sr", "22050", "--hop-length", "512", "--n-mels", "256"
    )
    assert status == 0 and err == ""
    assert "cp_resnet (rho=7, depth=26)" in out
    assert "135 x 135 px" in out
    assert "135 frames = 3.13 s" in out
    assert "135 of 256 mel bins" in out
    assert out.count(" Hz wide") == 3


def test_rf_default_is_the_library_default_rho(capsys):
    from sklearn_rfcnn.receptive_field import (
        DEFAULT_RHO,
        cp_resnet_layers,
        receptive_field,
    )

    status, out, _ = run_cli(capsys)
    assert status == 0
    px = receptive_field(cp_resnet_layers(DEFAULT_RHO)).time
    assert f"cp_resnet (rho={DEFAULT_RHO}, depth=26)" in out
    assert f"{px} x {px} px" in out


def test_rf_per_axis_and_spectrogram_options(capsys):
    status, out, _ = run_cli(
        capsys,
        "--rho-f", "2", "--rho-t", "10", "--sr", "44100", "--hop-length", "441",
        "--n-mels", "128", "--fmin", "30", "--fmax", "16000",
    )  # fmt: skip
    assert status == 0
    assert "rho_f=2, rho_t=10" in out
    assert "39 x 231 px" in out
    assert "231 frames = 2.31 s" in out
    assert "fmin=30 Hz, fmax=16000 Hz" in out


def test_rf_depth(capsys):
    status, out, _ = run_cli(capsys, "--depth", "8", "--rho", "3")
    assert status == 0 and "119 x 119 px" in out


@pytest.mark.parametrize(
    ("arch", "pixels"), [("resnet18", 435), ("resnet34", 899), ("vgg_cnn", 76)]
)
def test_rf_other_architectures(capsys, arch, pixels):
    status, out, _ = run_cli(capsys, "--arch", arch)
    assert status == 0
    assert out.startswith(arch)
    assert f"{pixels} x {pixels} px" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rho", "23"], "rho=23 is out of range"),
        (["--depth", "25"], "depth=25 must have the form"),
        (["--arch", "resnet_18"], "Did you mean 'resnet18'"),
        (["--arch", "vgg_cnn", "--rho", "3"], "--rho applies only to --arch cp_resnet"),
        (["--sr", "16000", "--fmax", "9000"], "fmax=9000.0"),
        (["--hop-length", "0"], "hop_length=0"),
    ],
)
def test_rf_errors_are_one_line_exit_2(capsys, argv, message):
    status, out, err = run_cli(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err.startswith("rfcnn rf: error: ")
    assert message in err
    assert err.count("\n") == 1
