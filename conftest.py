"""Shared pytest configuration: one torch thread, markers, small fixtures."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

# Modules that must not be imported by --doctest-modules (they run on import).
collect_ignore = ["sklearn_rfcnn/__main__.py", "setup.py", "docs", "benchmarks"]


def _torch_one_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return
    torch.set_num_threads(1)


_torch_one_thread()


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture
def tone_files(tmp_path):
    """Six short mono WAV tones at 8 kHz (two pitch classes) and their labels."""
    from sklearn_rfcnn.utils._testing import write_tones

    freqs = [220.0, 230.0, 240.0, 1800.0, 1900.0, 2000.0]
    paths = write_tones(tmp_path, freqs, duration=0.5, sr=8000)
    labels = ["low"] * 3 + ["high"] * 3
    return paths, labels


@pytest.fixture(scope="module")
def bands():
    """24 spectrograms (16 bands x 40 frames) and their 3-tag indicator matrix.

    A test module may define its own ``bands`` instead.
    """
    from sklearn_rfcnn.utils._testing import make_band_tags

    return make_band_tags(24, F=16, T=40)
