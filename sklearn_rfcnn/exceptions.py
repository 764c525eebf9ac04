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
    """Base class of every error raised by sklearn-rfcnn."""


class ParameterError(RFCNNError, ValueError):
    """A parameter value is invalid (``name=value must be ...``)."""


class DataError(RFCNNError, ValueError):
    """Input data are invalid: wrong shape, NaN/inf, empty clip, mismatched size."""


class InputTypeError(RFCNNError, TypeError):
    """Input data have the wrong type (e.g. strings where arrays are expected)."""


class AudioDecodeError(DataError):
    """An audio file is missing, unreadable or corrupt.

    Attributes
    ----------
    path : str
        The offending file.
    index : int or None
        Its position in the input sequence.
    """

    def __init__(self, message, *, path=None, index=None):
        super().__init__(message)
        self.path = path
        self.index = index


class RFCNNWarning(UserWarning):
    """Base class of the library's warnings."""


class SkippedItemsWarning(RFCNNWarning):
    """Some input items were skipped (``on_error="skip"``); the message lists them."""
