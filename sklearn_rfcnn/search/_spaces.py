"""Receptive-field-centred Optuna search spaces.

The default space follows what the CP-ResNet papers found (see
``docs``/``reference/method.md`` §1.2 and §5): the receptive field is the
hyper-parameter that matters most, regularised networks did best with rho in the
5-8 region, and rho between 3 and 10 spans receptive fields of 55 to 231
spectrogram pixels (about 1.3 to 5.4 s at 22.05 kHz with a 512-sample hop).
The rest of the space covers the regularisers the papers used (mixup,
Shake-Shake, frequency-aware blocks) and the optimiser's learning rate around
the reference 1e-4 (Adam) up to the 3e-3 that short CPU runs need.
"""

import difflib
from collections.abc import Mapping, Sequence

from sklearn_rfcnn.exceptions import ParameterError

__all__ = ["DEFAULT_SPACE_NAMES", "find_rf_prefix", "rf_search_space"]

#: The rho range of :func:`rf_search_space` (inclusive; the defaults study of
#: ``benchmarks/README.md`` puts the best rho of 5 s clips in it).
RHO_RANGE = (3, 10)
#: rho range of the space fitted to an estimator (widened to its own rho).
FITTED_RHO = (3, 12)

#: The names :func:`rf_search_space` returns by default (``separate_axes=False``).
DEFAULT_SPACE_NAMES = (
    "rho",
    "width",
    "mixup_alpha",
    "lr",
    "weight_decay",
    "shake_shake",
    "frequency_aware",
)

_AXIS_NAMES = ("rho_f", "rho_t")


def _import_optuna():
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(
            "sklearn_rfcnn.search needs Optuna: pip install 'sklearn-rfcnn[tune]'"
        ) from exc
    return optuna


def _check_range(name, value, *, integer=False, positive=False):
    if not (isinstance(value, Sequence) and len(value) == 2):
        raise ParameterError(
            f"{name}={value!r} must be a (low, high) pair, e.g. {name}=(3, 10)."
        )
    low, high = value
    kinds = (int,) if integer else (int, float)
    if not all(isinstance(v, kinds) and not isinstance(v, bool) for v in value):
        kind = "integers" if integer else "numbers"
        raise ParameterError(f"{name}={value!r} must hold two {kind}.")
    if low > high:
        raise ParameterError(f"{name}={value!r} must have low <= high.")
    if positive and low <= 0:
        raise ParameterError(
            f"{name}={value!r} is searched on a log scale: low must be > 0."
        )
    if integer and low < 0:
        raise ParameterError(f"{name}={value!r} must be >= 0 (rho counts 3x3 convs).")
    return low, high


def _check_names(arg, names, allowed):
    unknown = [n for n in names if n not in allowed]
    if unknown:
        hints = []
        for n in unknown:
            close = difflib.get_close_matches(n, allowed, n=1)
            hints.append(f"{n!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ParameterError(
            f"{arg} names unknown parameters {', '.join(hints)}; "
            f"the space holds {sorted(allowed)}."
        )


def rf_search_space(
    prefix="clf__",
    *,
    rho=RHO_RANGE,
    separate_axes=False,
    width=(32, 64, 128),
    lr=(1e-4, 3e-3),
    mixup_alpha=(0.0, 0.5),
    weight_decay=(1e-6, 1e-3),
    include=None,
    exclude=None,
    overrides=None,
):
    r"""Optuna distributions over the receptive field and the regularisers.

    Parameters
    ----------
    prefix : str, default="clf\_\_"
        Put in front of every name: ``"clf__"`` for a Pipeline step called
        ``clf``, ``""`` for a bare estimator.
    rho : (int, int), default=RHO_RANGE
        Inclusive range of rho, the number of 3x3 convolutions after the first
        block (the receptive-field knob). The papers' best region is 5-8;
        3-10 spans RF 55-231 px. Searched uniformly over the integers.
    separate_axes : bool, default=False
        Search ``rho_f`` (frequency) and ``rho_t`` (time) independently, each
        over the ``rho`` range, instead of one symmetric ``rho``.
    width : sequence of int, default=(32, 64, 128)
        Choices of base channel width (128 is the papers' setting).
    lr : (float, float), default=(1e-4, 3e-3)
        Log-uniform range of the learning rate (1e-4 is the reference Adam
        rate for long schedules; short runs prefer the upper part).
    mixup_alpha : (float, float), default=(0.0, 0.5)
        Uniform range of the mixup Beta parameter (the papers used 0.3; 0
        switches mixup off).
    weight_decay : (float, float), default=(1e-6, 1e-3)
        Log-uniform range of the weight decay (the papers used none; the low
        end is effectively none).
    include : iterable of str, default=None
        Keep only these (unprefixed) names of the default space.
    exclude : iterable of str, default=None
        Drop these (unprefixed) names from the space.
    overrides : mapping of str to distribution or list, default=None
        Replace or add entries (unprefixed names, e.g. ``{"depth": [14, 26]}``
        or ``{"rho": IntDistribution(5, 8)}``); a list or tuple becomes a
        categorical distribution. Applied after ``include``/``exclude``.

    Returns
    -------
    space : dict of str to optuna.distributions.BaseDistribution
        Ready for :class:`RFOptunaSearchCV`'s ``param_distributions``.

    Raises
    ------
    ParameterError
        On a malformed range or an unknown name in ``include``/``exclude``.

    Examples
    --------
    >>> from sklearn_rfcnn.search import rf_search_space
    >>> space = rf_search_space()
    >>> sorted(space)[:3]
    ['clf__frequency_aware', 'clf__lr', 'clf__mixup_alpha']
    >>> space["clf__rho"]
    IntDistribution(high=10, log=False, low=3, step=1)
    >>> sorted(rf_search_space("", separate_axes=True, include=["rho_f", "rho_t"]))
    ['rho_f', 'rho_t']
    >>> rf_search_space("", include=["rho"], overrides={"depth": [14, 26]})["depth"]
    CategoricalDistribution(choices=(14, 26))
    """
    optuna = _import_optuna()
    dist = optuna.distributions
    if not isinstance(prefix, str):
        raise ParameterError(f"prefix={prefix!r} must be a str such as 'clf__' or ''.")
    low, high = _check_range("rho", rho, integer=True)
    lr_low, lr_high = _check_range("lr", lr, positive=True)
    mix_low, mix_high = _check_range("mixup_alpha", mixup_alpha)
    if mix_low < 0:
        raise ParameterError(f"mixup_alpha={mixup_alpha!r} must be >= 0.")
    wd_low, wd_high = _check_range("weight_decay", weight_decay, positive=True)
    if isinstance(width, str | bytes) or not isinstance(width, Sequence) or not width:
        raise ParameterError(f"width={width!r} must be a non-empty sequence of int.")
    if not all(isinstance(w, int) and w > 0 for w in width):
        raise ParameterError(f"width={width!r} must hold positive integers.")

    space = {}
    if separate_axes:
        for name in _AXIS_NAMES:
            space[name] = dist.IntDistribution(low, high)
    else:
        space["rho"] = dist.IntDistribution(low, high)
    space["width"] = dist.CategoricalDistribution(tuple(width))
    space["mixup_alpha"] = dist.FloatDistribution(mix_low, mix_high)
    space["lr"] = dist.FloatDistribution(lr_low, lr_high, log=True)
    space["weight_decay"] = dist.FloatDistribution(wd_low, wd_high, log=True)
    space["shake_shake"] = dist.CategoricalDistribution((False, True))
    space["frequency_aware"] = dist.CategoricalDistribution((False, True))

    if include is not None:
        include = [include] if isinstance(include, str) else list(include)
        _check_names("include", include, list(space))
        space = {k: v for k, v in space.items() if k in include}
    if exclude is not None:
        exclude = [exclude] if isinstance(exclude, str) else list(exclude)
        _check_names("exclude", exclude, list(space))
        space = {k: v for k, v in space.items() if k not in exclude}
    if overrides is not None:
        if not isinstance(overrides, Mapping):
            raise ParameterError(
                f"overrides={overrides!r} must map parameter names to distributions."
            )
        for name, value in overrides.items():
            space[name] = to_distribution(name, value)
    return {prefix + k: v for k, v in space.items()}


def to_distribution(name, value):
    """Turn a distribution or a list of choices into an Optuna distribution.

    Parameters
    ----------
    name : str
        The parameter's name, for the error message.
    value : optuna.distributions.BaseDistribution or list or tuple
        A list or tuple becomes a categorical distribution.

    Returns
    -------
    distribution : optuna.distributions.BaseDistribution

    Examples
    --------
    >>> to_distribution("C", [0.1, 1.0])
    CategoricalDistribution(choices=(0.1, 1.0))
    """
    optuna = _import_optuna()
    dist = optuna.distributions
    if isinstance(value, dist.BaseDistribution):
        return value
    if isinstance(value, list | tuple) and len(value) > 0:
        return dist.CategoricalDistribution(tuple(value))
    raise ParameterError(
        f"the search space entry {name}={value!r} must be an Optuna distribution "
        "(e.g. optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)) "
        "or a non-empty list of choices."
    )


def find_rf_prefix(estimator):
    """Return the parameter prefix of the RF-CNN inside ``estimator``.

    The RF-CNN is the (only) object whose parameters include ``rho``:
    ``""`` for a bare estimator, ``"clf__"`` for a Pipeline step ``clf``,
    and so on through nested pipelines.

    Parameters
    ----------
    estimator : estimator or Pipeline

    Returns
    -------
    prefix : str

    Raises
    ------
    ParameterError
        When no step, or more than one, has a ``rho`` parameter.

    Examples
    --------
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn.base import BaseEstimator
    >>> class Net(BaseEstimator):
    ...     def __init__(self, rho=7):
    ...         self.rho = rho
    >>> find_rf_prefix(Net()), find_rf_prefix(Pipeline([("clf", Net())]))
    ('', 'clf__')
    """
    params = estimator.get_params(deep=True)
    prefixes = sorted(
        k[: -len("rho")] for k in params if k == "rho" or k.endswith("__rho")
    )
    if len(prefixes) != 1:
        found = "none" if not prefixes else ", ".join(p + "rho" for p in prefixes)
        raise ParameterError(
            "param_distributions=None searches the RF-CNN's default space "
            f"(rf_search_space) but the estimator has {found} 'rho' parameter(s); "
            "pass param_distributions explicitly, e.g. "
            "rf_search_space(prefix='clf__')."
        )
    return prefixes[0]


def _rho_range(depth, default=RHO_RANGE):
    """The default rho range, clipped to what a network of ``depth`` allows."""
    if depth is None:
        return default
    from sklearn_rfcnn.receptive_field import max_rho

    top = max_rho(depth)
    return (min(default[0], top), min(default[1], top))


def _effective_params(estimator, prefix):
    """The RF-CNN's architecture parameters as it will build them.

    A parameter the estimator leaves at ``None`` takes the architecture's own
    default (read from the registered network's signature, where the library
    keeps it).  Returns ``(arch, accepted, values)``.
    """
    import inspect

    from sklearn_rfcnn.models import get_model_entrypoint
    from sklearn_rfcnn.receptive_field import resolve_rho

    params = estimator.get_params(deep=True)
    arch = params.get(prefix + "arch", "cp_resnet")
    accepted = inspect.signature(get_model_entrypoint(arch)).parameters
    values = {}
    for name in ("rho", "rho_f", "rho_t", "depth"):
        value = params.get(prefix + name)
        if value is None and name in accepted:
            value = accepted[name].default
        values[name] = value
    if "rho" in accepted and values["rho"] is None:  # the library's one default
        values["rho"] = resolve_rho()[0]
    return arch, accepted, values


def fitted_search_space(estimator):
    """The default search space of :class:`RFOptunaSearchCV` for ``estimator``.

    At the budget a user gives (their ``width``, ``max_epochs``,
    ``batch_size``), the search spends its trials on the receptive field: rho
    over 3-12 (widened to the estimator's own rho, capped at what its depth
    allows), or ``rho_f`` and ``rho_t`` when the estimator sets either. Every
    other parameter keeps the estimator's value; for wider spaces pass
    ``param_distributions`` (e.g. :func:`rf_search_space`).

    Parameters
    ----------
    estimator : estimator or Pipeline
        Holds one RF-CNN (a step with a ``rho`` parameter).

    Returns
    -------
    space : dict of str to optuna.distributions.IntDistribution
    own : dict of str to int
        The estimator's own values of those parameters (the search's first,
        enqueued trial).

    Raises
    ------
    ParameterError
        When no step has ``rho``, or its architecture has no receptive-field
        parameter.

    Examples
    --------
    >>> from sklearn_rfcnn import RFCNNClassifier
    >>> space, own = fitted_search_space(RFCNNClassifier(width=24, rho=7))
    >>> space
    {'rho': IntDistribution(high=12, log=False, low=3, step=1)}
    >>> own
    {'rho': 7}
    """
    optuna = _import_optuna()
    prefix = find_rf_prefix(estimator)
    arch, accepted, values = _effective_params(estimator, prefix)
    if "rho" not in accepted:
        raise ParameterError(
            f"the default search space tunes the receptive field (rho), which "
            f"arch={arch!r} does not have; pass param_distributions, e.g. "
            "{'lr': FloatDistribution(1e-4, 3e-3, log=True)}."
        )
    low, high = _rho_range(values["depth"], default=FITTED_RHO)
    top = high
    if values["depth"] is not None:
        from sklearn_rfcnn.receptive_field import max_rho

        top = max_rho(values["depth"])
    axes = ("rho",)
    if values["rho_f"] is not None or values["rho_t"] is not None:
        axes = _AXIS_NAMES
        values = {
            **values,
            **{a: values["rho"] if values[a] is None else values[a] for a in axes},
        }
    space, own = {}, {}
    for axis in axes:
        value = values[axis]
        lo, hi = low, high
        if isinstance(value, int) and 0 <= value <= top:
            lo, hi = min(lo, value), max(hi, value)
            own[prefix + axis] = value
        space[prefix + axis] = optuna.distributions.IntDistribution(lo, hi)
    return space, own
