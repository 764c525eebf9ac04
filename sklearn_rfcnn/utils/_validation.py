"""Parameter validation shared by every estimator of the library.

scikit-learn's declarative checks (``_parameter_constraints``) raise its own
``InvalidParameterError``; :class:`ParamValidationMixin` re-raises them as
:class:`ConstraintError`, which is also the library's
:class:`~sklearn_rfcnn.exceptions.ParameterError`, so ``except ParameterError``
and scikit-learn's ``check_param_validation`` both see it.
"""

from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.utils._sklearn_compat import InvalidParameterError

__all__ = ["ConstraintError", "ParamValidationMixin"]


class ConstraintError(ParameterError, InvalidParameterError):
    """A declared parameter constraint failed.

    Both the library's :class:`~sklearn_rfcnn.exceptions.ParameterError` and
    scikit-learn's ``InvalidParameterError``.
    """


class ParamValidationMixin:
    """Raise :class:`ConstraintError` for declared constraints, then extra checks.

    Subclasses define ``_check_params_extra`` for checks that involve several
    parameters at once (they raise :class:`ParameterError`).
    """

    def _validate_params(self):
        try:
            super()._validate_params()
        except InvalidParameterError as exc:
            raise ConstraintError(str(exc)) from None
        self._check_params_extra()

    def _check_params_extra(self):
        """Cross-parameter checks; none by default."""
