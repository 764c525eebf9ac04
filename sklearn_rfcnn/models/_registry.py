"""Model registry: ``@register_model`` entry points and ``create_model``.

An entry point is a class or a function with an explicit signature (no
``**kwargs``), so ``inspect.signature(get_model_entrypoint(name))`` lists
exactly the arguments ``create_model(name, ...)`` accepts.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable

from sklearn_rfcnn.exceptions import ParameterError

__all__ = [
    "check_model_args",
    "create_model",
    "get_model_entrypoint",
    "list_models",
    "register_model",
]

_MODEL_ENTRYPOINTS: dict[str, Callable] = {}


def register_model(fn: Callable | None = None, *, name: str | None = None):
    """Register a model class or builder function under its (lowercase) name.

    Parameters
    ----------
    fn : callable
        A ``torch.nn.Module`` subclass or a function returning one.  Its
        signature is what :func:`create_model` accepts.
    name : str, optional
        Registry name; defaults to ``fn.__name__``.

    Returns
    -------
    fn : callable
        Unchanged, so the decorator can stack.

    Examples
    --------
    >>> import torch
    >>> @register_model(name="_doctest_tiny")
    ... def _tiny(in_channels: int = 1, n_classes: int = 2) -> torch.nn.Module:
    ...     return torch.nn.Conv2d(in_channels, n_classes, 1)
    >>> create_model("_doctest_tiny", n_classes=3).out_channels
    3

    Names starting with an underscore are private: :func:`list_models` hides them.
    An entry point may carry a ``check_args(**kwargs)`` static method: the
    cheap argument checks of its constructor, which :func:`check_model_args`
    (and so the estimators' parameter validation, before any data is read)
    runs without building the network.
    """

    def wrap(f):
        key = name or f.__name__
        if key in _MODEL_ENTRYPOINTS and _MODEL_ENTRYPOINTS[key] is not f:
            raise ParameterError(f"model name {key!r} is already registered.")
        _MODEL_ENTRYPOINTS[key] = f
        return f

    return wrap if fn is None else wrap(fn)


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered models, sorted.

    Parameters
    ----------
    pattern : str, optional
        Shell-style wildcard filter, e.g. ``"resnet*"``.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> list_models("resnet*")
    ['resnet18', 'resnet34']
    """
    names = sorted(n for n in _MODEL_ENTRYPOINTS if not n.startswith("_"))
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def _unknown(name):
    names = list_models()
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ParameterError(
        f"arch={name!r} is not a registered model.{hint} Available: {', '.join(names)}."
    )


def get_model_entrypoint(name: str) -> Callable:
    """The class or builder registered under ``name``.

    Parameters
    ----------
    name : str

    Returns
    -------
    entrypoint : callable

    Raises
    ------
    ParameterError
        If ``name`` is unknown (the message suggests the closest name).

    Examples
    --------
    >>> import inspect
    >>> "rho" in inspect.signature(get_model_entrypoint("cp_resnet")).parameters
    True
    """
    try:
        return _MODEL_ENTRYPOINTS[name]
    except (KeyError, TypeError):
        raise _unknown(name) from None


def create_model(name: str, **kwargs):
    """Build a registered model by name.

    Parameters
    ----------
    name : str
        One of :func:`list_models`: ``"cp_resnet"``, ``"vgg_cnn"``,
        ``"resnet18"``, ``"resnet34"``.
    **kwargs
        Constructor arguments of that model; every model accepts
        ``in_channels``, ``n_classes`` and ``width``.

    Returns
    -------
    model : torch.nn.Module

    Raises
    ------
    ParameterError
        On an unknown name or an argument the model does not take.

    Examples
    --------
    >>> m = create_model("cp_resnet", n_classes=3, rho=2, width=4)
    >>> m.num_features
    16
    >>> create_model("cp_resnt")
    Traceback (most recent call last):
    ...
    sklearn_rfcnn.exceptions.ParameterError: arch='cp_resnt' is not a registered
    model. Did you mean 'cp_resnet'? ...
    """
    fn = _checked_entrypoint(name, kwargs)
    return fn(**kwargs)


def _checked_entrypoint(name, kwargs):
    """The entry point of ``name``, once ``kwargs`` are all its arguments."""
    fn = get_model_entrypoint(name)
    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        bad = sorted(set(kwargs) - set(params))
        if bad:
            raise ParameterError(
                f"model {name!r} does not take {', '.join(bad)}; its arguments are "
                f"{', '.join(params)}."
            )
    return fn


def check_model_args(name: str, **kwargs) -> None:
    """Check arguments for :func:`create_model` without building the network.

    The names must be arguments of the model, and the model's own
    ``check_args`` (where it defines one, as
    :class:`~sklearn_rfcnn.models.CPResNet` does for ``rho`` against
    ``depth``) must accept the values.  Takes microseconds, so callers run it
    before any data is read.

    Parameters
    ----------
    name : str
        A registered model name.
    **kwargs
        Constructor arguments, as for :func:`create_model`.

    Raises
    ------
    ParameterError
        On an unknown name, an argument the model does not take, or a value
        (or combination) the model rejects.

    Examples
    --------
    >>> check_model_args("cp_resnet", rho=7, depth=26)
    >>> check_model_args("cp_resnet", rho=12, depth=14)
    Traceback (most recent call last):
    ...
    sklearn_rfcnn.exceptions.ParameterError: rho=12 is out of range: it must lie
    in [0, 10]. ...
    """
    fn = _checked_entrypoint(name, kwargs)
    check = getattr(fn, "check_args", None)
    if check is not None:
        check(**kwargs)
