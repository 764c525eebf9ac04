"""Torch helpers: device resolution and seeding without touching global state."""

import contextlib

import numpy as np
import torch
from sklearn.utils import check_random_state

from sklearn_rfcnn.exceptions import ParameterError

__all__ = ["resolve_device", "seeded_torch", "torch_seed_from"]


def resolve_device(device="auto"):
    """Turn ``"auto"`` into ``"cuda"`` when a GPU is present, else ``"cpu"``.

    Parameters
    ----------
    device : str or torch.device, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns
    -------
    device : str
        A concrete torch device string.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(
            f"device={device!r} was requested but CUDA is not available on this "
            "machine; use device='auto' or device='cpu'."
        )
    return device


def torch_seed_from(random_state):
    """Draw a 31-bit torch seed from a scikit-learn ``random_state``.

    Examples
    --------
    >>> torch_seed_from(0) == torch_seed_from(0)
    True
    """
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def seeded_torch(seed, device="cpu"):
    """Run a block with torch's RNG seeded, restoring the global RNG afterwards.

    Parameters
    ----------
    seed : int
        The seed for the forked RNG.
    device : str, default="cpu"
        When a CUDA device, its RNG is forked too.
    """
    devices = []
    if str(device).startswith("cuda") and torch.cuda.is_available():
        devices = [torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
