"""Net construction: the network from the estimator's parameters, and its net.

The private skorch net trains the network on a device with the precision and
memory format of :mod:`._execution` (data-parallel through Accelerate).
"""

import inspect

import torch

from sklearn_rfcnn.estimators._data import (
    _train_loader,
    _valid_loader,
    loader_workers,
)
from sklearn_rfcnn.estimators._net import _RFCNNNet
from sklearn_rfcnn.estimators._recipe import _OPTIMIZERS
from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.models import create_model, get_model_entrypoint
from sklearn_rfcnn.utils._torch import (
    AMP_DTYPES,
)

__all__ = []

#: Model parameters whose estimator default (None) differs from the network's
#: own default, where the network takes them (chosen in
#: ``benchmarks/recipe_study.py``; the paper's values stay reachable).
_RECIPE_MODEL_DEFAULTS = {"head": "pooled"}

#: Keyword arguments a registered network may take from the estimator.
_MODEL_PARAMS = (
    "rho",
    "rho_f",
    "rho_t",
    "width",
    "depth",
    "frequency_aware",
    "shake_shake",
    "head",
)


class _ConstructionMixin:
    """Builds the network and the private skorch net around it."""

    def _model_kwargs(self):
        """The model parameters the user set, checked against ``arch``.

        A parameter left at its default (None, or False for the switches)
        lets the architecture use its own standard value; a parameter the
        architecture cannot take raises instead of being silently ignored.
        """
        entrypoint = get_model_entrypoint(self.arch)  # "did you mean" on typos
        accepted = inspect.signature(entrypoint).parameters
        kwargs, unusable = {}, []
        for name in _MODEL_PARAMS:
            value = getattr(self, name)
            if value is None and name in _RECIPE_MODEL_DEFAULTS and name in accepted:
                value = _RECIPE_MODEL_DEFAULTS[name]
            if value is None or value is False:
                continue
            if name in accepted:
                kwargs[name] = value
            else:
                unusable.append(f"{name}={value!r}")
        if unusable:
            raise ParameterError(
                f"arch={self.arch!r} cannot use {', '.join(unusable)}; its "
                f"parameters are {', '.join(p for p in accepted if p in _MODEL_PARAMS)}"
                ". Leave the others at None/False (the receptive-field parameters "
                "rho, rho_f, rho_t and the variants frequency_aware, shake_shake "
                'are for arch="cp_resnet").'
            )
        return kwargs

    def _create_module(self, in_channels, n_outputs):
        return create_model(
            self.arch,
            in_channels=in_channels,
            n_classes=n_outputs,
            **self._model_kwargs(),
        )

    def _build_net(
        self, module, device, rng, class_weight=None, accelerator=None, source=False
    ):
        """The skorch net for ``module`` on ``device``.

        Also decides (and records as ``precision_``, ``channels_last_`` and
        ``inference_channels_last_``) how the net runs on this device: a
        loaded model decides afresh for the machine it is loaded on.  A
        data-parallel net keeps one layout (its module may stay wrapped).
        With an ``accelerator`` (``fit`` with ``distributed="accelerate"``)
        the net trains data-parallel
        (:class:`~._accelerate._AcceleratedRFCNNNet`); without one (and
        always in ``load``) it is a plain :class:`_RFCNNNet`.  ``source``
        (training from a clip source) lets :func:`._data.loader_workers` give
        the training DataLoader worker processes on CUDA.
        """
        cuda = device.startswith("cuda")
        workers = loader_workers(device, source)
        (self.precision_, self.channels_last_, self.inference_channels_last_) = (
            self._resolve_execution(device)
        )
        if accelerator is not None:
            self.inference_channels_last_ = self.channels_last_
        callbacks = self._callbacks()
        criterion = (
            torch.nn.BCEWithLogitsLoss
            if self._multilabel
            else torch.nn.CrossEntropyLoss
        )
        kwargs = dict(
            criterion=criterion,
            optimizer=_OPTIMIZERS[self.optimizer],
            optimizer__weight_decay=self.weight_decay,
            **self._optimizer_implementation(device),
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=_train_loader,
            iterator_valid=_valid_loader,
            iterator_train__shuffle=True,
            iterator_train__crop_frames=self.crop_frames,
            iterator_valid__window=self.crop_frames,
            iterator_valid__hop=(
                None if self.crop_frames is None else self._window_hop(self.crop_frames)
            ),
            iterator_train__pin_memory=cuda,
            iterator_train__num_workers=workers,
            iterator_valid__pin_memory=cuda,
            train_split=None,
            callbacks=callbacks,
            verbose=self.verbose,
            device=device,
            multilabel=self._multilabel,
            mixup_alpha=self.mixup_alpha,
            **self._augmentations(),
            rng=rng,
            amp_dtype=AMP_DTYPES[self.precision_],
            class_weight=class_weight,
            channels_last=self.channels_last_,
            inference_channels_last=self.inference_channels_last_,
            aggregate=self.aggregate,
        )
        if accelerator is not None:
            from sklearn_rfcnn.estimators._accelerate import _print_sink

            # the epoch table from the main process only, and only when verbose
            kwargs["callbacks__print_log__sink"] = _print_sink(
                accelerator, self.verbose
            )
        kwargs.update(self.net_params or {})
        if accelerator is not None:
            from sklearn_rfcnn.estimators._accelerate import _AcceleratedRFCNNNet

            return _AcceleratedRFCNNNet(module, accelerator=accelerator, **kwargs)
        return _RFCNNNet(module, **kwargs)
