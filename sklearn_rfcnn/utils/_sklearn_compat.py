"""The only place that imports scikit-learn's private helpers.

scikit-learn's declarative parameter validation (``Interval``, ``StrOptions``,
``_fit_context``) is private API; keeping every import of it here means a
change in scikit-learn is mended in one file.
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    RealNotInt,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import validate_data

__all__ = [
    "HasMethods",
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "Options",
    "RealNotInt",
    "StrOptions",
    "_fit_context",
    "validate_data",
    "validate_params",
]
