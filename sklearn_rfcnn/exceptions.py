"""The library's small exception and warning tree.

Every error the library raises on bad input derives from :class:`RFCNNError`
and also from the builtin class a user would catch (``ValueError`` or
``TypeError``), so ``except ValueError`` keeps working.  "Not fitted" is
scikit-learn's :class:`~sklearn.exceptions.NotFittedError`.
"""

__all__ = [
    "AudioDecodeError",
    "DataError",
    "InputTypeError",
    "ParameterError",
    "RFCNNError",
    "RFCNNWarning",
    "SkippedItemsWarning",
]


class RFCNNError(Exception):
    """Base class of every error raised by sklearn-rfcnn.

    Examples
    --------
    >>> from sklearn_rfcnn.exceptions import ParameterError, RFCNNError
    >>> issubclass(ParameterError, RFCNNError)
    True
    """


class ParameterError(RFCNNError, ValueError):
    """A parameter value is invalid (``name=value must be ...``).

    Examples
    --------
    >>> from sklearn_rfcnn.exceptions import ParameterError
    >>> from sklearn_rfcnn.receptive_field import kernel_schedule
    >>> try:
    ...     kernel_schedule(-1)
    ... except ValueError as exc:  # a ParameterError is a ValueError
    ...     print(type(exc).__name__)
    ParameterError
    """


class DataError(RFCNNError, ValueError):
    """Input data are invalid: wrong shape, NaN/inf, empty clip, mismatched size.

    Examples
    --------
    >>> from sklearn_rfcnn.exceptions import DataError
    >>> issubclass(DataError, ValueError)
    True
    """


class InputTypeError(RFCNNError, TypeError):
    """Input data have the wrong type (e.g. strings where arrays are expected).

    Examples
    --------
    >>> from sklearn_rfcnn.exceptions import InputTypeError
    >>> issubclass(InputTypeError, TypeError)
    True
    """


class AudioDecodeError(DataError):
    """An audio file is missing, unreadable or corrupt.

    Attributes
    ----------
    path : str
        The offending file.
    index : int or None
        Its position in the input sequence.

    Examples
    --------
    >>> from sklearn_rfcnn.exceptions import AudioDecodeError
    >>> err = AudioDecodeError("cannot decode clip.wav", path="clip.wav", index=3)
    >>> err.path, err.index, isinstance(err, ValueError)
    ('clip.wav', 3, True)
    """

    def __init__(self, message, *, path=None, index=None):
        super().__init__(message)
        self.path = path
        self.index = index


class RFCNNWarning(UserWarning):
    """Base class of the library's warnings.

    Examples
    --------
    >>> import warnings
    >>> from sklearn_rfcnn.exceptions import RFCNNWarning
    >>> warnings.simplefilter("ignore", RFCNNWarning)  # silence them all
    >>> warnings.resetwarnings()
    """


class SkippedItemsWarning(RFCNNWarning):
    """Some input items were skipped (``on_error="skip"``); the message lists them.

    Examples
    --------
    >>> from sklearn_rfcnn.exceptions import RFCNNWarning, SkippedItemsWarning
    >>> issubclass(SkippedItemsWarning, RFCNNWarning)
    True
    """
