"""Integer and boolean argument checks for the torch-free, sklearn-free layers.

The one place that checks ``int``/``bool`` constructor and function arguments
for :mod:`sklearn_rfcnn.receptive_field` (the pure arithmetic layer) and for
the networks in :mod:`sklearn_rfcnn.models`.  It imports only the standard
library and :mod:`sklearn_rfcnn.exceptions`, so the bottom layer stays free of
torch, scikit-learn (and numpy: numpy scalars are recognised without importing
numpy).  Messages read ``name=value must be ...``.
"""

import numbers
import sys

from sklearn_rfcnn.exceptions import ParameterError

__all__ = ["check_bool", "check_int"]


def check_int(name, value, *, minimum=None, maximum=None, hint=""):
    """Return ``value`` as an ``int`` if it is an integer in ``[minimum, maximum]``.

    Python and numpy integers are accepted (``numbers.Integral``); ``bool`` is
    refused even though it is an ``int`` subclass.

    Parameters
    ----------
    name : str
        Argument name, for the message.
    value : object
        The value to check.
    minimum, maximum : int or None, default=None
        Inclusive bounds; ``None`` leaves that side open.
    hint : str, default=""
        Appended to the message (start it with a space).

    Returns
    -------
    value : int

    Raises
    ------
    ParameterError
        When ``value`` is not an integer or lies outside the bounds.

    Examples
    --------
    >>> check_int("n_mels", 128, minimum=1)
    128
    >>> check_int("rho", 23, minimum=0, maximum=22)
    Traceback (most recent call last):
    ...
    sklearn_rfcnn.exceptions.ParameterError: rho=23 is out of range: it must lie in [0, 22].
    >>> check_int("width", 2.0)
    Traceback (most recent call last):
    ...
    sklearn_rfcnn.exceptions.ParameterError: width=2.0 must be an integer, got float.
    """  # noqa: E501
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(
            f"{name}={value!r} must be an integer, got {type(value).__name__}.{hint}"
        )
    value = int(value)
    if (minimum is not None and value < minimum) or (
        maximum is not None and value > maximum
    ):
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        raise ParameterError(
            f"{name}={value} is out of range: it must lie in [{lo}, {hi}].{hint}"
        )
    return value


def check_bool(name, value):
    """Return ``value`` as a ``bool`` if it is ``True``/``False`` (or a numpy bool).

    Integers such as ``1`` are refused: a flag is a flag.

    Parameters
    ----------
    name : str
        Argument name, for the message.
    value : object
        The flag; ``1``, ``0`` and ``"yes"`` are refused.

    Returns
    -------
    value : bool
        ``bool(value)`` for a Python or numpy bool.

    Raises
    ------
    ParameterError
        When ``value`` is not a boolean.

    Examples
    --------
    >>> check_bool("shake_shake", True)
    True
    >>> check_bool("shake_shake", 1)
    Traceback (most recent call last):
    ...
    sklearn_rfcnn.exceptions.ParameterError: shake_shake=1 must be True or False.
    """
    if isinstance(value, bool):
        return value
    # A numpy bool can only exist once numpy is imported; never import it here.
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.bool_):
        return bool(value)
    raise ParameterError(f"{name}={value!r} must be True or False.")
