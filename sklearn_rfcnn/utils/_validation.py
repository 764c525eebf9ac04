"""Parameter validation shared by every estimator of the library.

scikit-learn's declarative checks (``_parameter_constraints``) raise its own
``InvalidParameterError``; :class:`ParamValidationMixin` re-raises them as
:class:`ConstraintError`, which is also the library's
:class:`~sklearn_rfcnn.exceptions.ParameterError`, so ``except ParameterError``
and scikit-learn's ``check_param_validation`` both see it.
"""

from sklearn_rfcnn.exceptions import ParameterError, RFCNNError
from sklearn_rfcnn.utils._sklearn_compat import InvalidParameterError

__all__ = ["ConstraintError", "ParamValidationMixin", "check_params"]


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


def _nested(estimator, path):
    """``(path, estimator)`` for ``estimator`` and every estimator inside it.

    Follows parameters that are estimators (a search's ``estimator``) and
    lists of ``(name, estimator, ...)`` tuples (``Pipeline.steps``,
    ``FeatureUnion.transformer_list``, ``ColumnTransformer.transformers``);
    ``path`` is the ``set_params`` prefix (``"clf"``, ``"estimator__clf"``).
    The estimator of a search is left to the search: it replaces some of
    their values per candidate (RFOptunaSearchCV checks it itself).
    """
    yield path, estimator
    if any(hasattr(estimator, a) for a in ("param_grid", "param_distributions")):
        return  # a search sets its estimator's parameters per candidate
    params = estimator.get_params(deep=False)
    for name, value in params.items():
        if hasattr(value, "get_params") and not isinstance(value, type):
            yield from _nested(value, f"{path}__{name}" if path else name)
        elif isinstance(value, list | tuple):
            for item in value:
                if (
                    isinstance(item, tuple)
                    and len(item) >= 2
                    and isinstance(item[0], str)
                    and hasattr(item[1], "get_params")
                    and not isinstance(item[1], type)
                ):
                    yield from _nested(
                        item[1], f"{path}__{item[0]}" if path else item[0]
                    )


def check_params(estimator):
    """Validate the parameters of an estimator and of every estimator inside it.

    A fast pre-flight, without data: each estimator's declared constraints
    and cross-parameter checks (what its ``fit`` checks first, such as
    ``rho`` against the CP-ResNet ``depth``) run for the estimator, the steps
    of a :class:`~sklearn.pipeline.Pipeline`, of a ``FeatureUnion`` and so
    on.  A search's estimator is validated by the search itself, since the
    search replaces some of its parameters:
    :class:`~sklearn_rfcnn.search.RFOptunaSearchCV` checks it with the
    combinations of its space's ends; scikit-learn's searches do not look
    inside.  scikit-learn's ``Pipeline.fit`` runs the front end (audio
    decoding, spectrograms) before the final estimator sees its parameters;
    call this first to learn of a wrong value in well under a second. ``rfcnn
    fit``, ``tune`` and ``embed`` and :class:`~sklearn_rfcnn.search.RFOptunaSearchCV`
    call it before reading any data.

    Parameters
    ----------
    estimator : estimator instance
        An estimator, a Pipeline, a search or any composite of them.
        Estimators without declared constraints are passed over.

    Returns
    -------
    estimator : estimator instance
        The same object, unchanged.

    Raises
    ------
    ParameterError
        The first invalid value, its message prefixed with the step that
        holds it (``step 'clf' (RFCNNClassifier): ...``, the ``set_params``
        name); a declared constraint raises the
        :class:`~sklearn_rfcnn.utils._validation.ConstraintError` subclass,
        which is also scikit-learn's ``InvalidParameterError``.

    Examples
    --------
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn_rfcnn import (
    ...     AudioLoader, MelSpectrogram, RFCNNClassifier, check_params
    ... )
    >>> pipe = Pipeline([("load", AudioLoader()), ("mel", MelSpectrogram()),
    ...                  ("clf", RFCNNClassifier(rho=40))])
    >>> check_params(pipe)
    Traceback (most recent call last):
    ...
    sklearn_rfcnn.exceptions.ParameterError: step 'clf' (RFCNNClassifier):
    rho=40 is out of range: it must lie in [0, 22]. ...
    >>> check_params(pipe.set_params(clf__rho=7)) is pipe
    True
    """
    for path, est in _nested(estimator, ""):
        if not hasattr(type(est), "_parameter_constraints"):
            continue
        try:
            est._validate_params()
        except (ValueError, TypeError) as exc:
            if not path and isinstance(exc, RFCNNError):
                raise
            message = (
                f"step {path!r} ({type(est).__name__}): {exc}" if path else str(exc)
            )
            if isinstance(exc, InvalidParameterError):
                raise ConstraintError(message) from exc
            raise ParameterError(message) from exc
    return estimator
