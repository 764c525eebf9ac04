"""Fixtures shared by several test modules (the root conftest.py has the rest)."""

import pytest


@pytest.fixture(scope="module")
def bands():
    """24 spectrograms (16 bands x 40 frames) and their 3-tag indicator matrix.

    A module may define its own ``bands`` instead.
    """
    from sklearn_rfcnn.utils._testing import make_band_tags

    return make_band_tags(24, F=16, T=40)
