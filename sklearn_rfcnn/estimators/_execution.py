"""Execution: the device, precision and memory format a net runs with.

Also the Accelerate set-up of a data-parallel fit.
"""

import torch

from sklearn_rfcnn.exceptions import ParameterError
from sklearn_rfcnn.utils import _conv_grad
from sklearn_rfcnn.utils._torch import (
    cpu_native_bf16,
    resolve_channels_last,
    resolve_precision,
)

__all__ = []


class _ExecutionMixin:
    """Decides and reports where and how the net runs."""

    def _accelerator(self):
        """``(accelerator, device)`` of this process (``distributed="accelerate"``)."""
        from sklearn_rfcnn.estimators._accelerate import make_accelerator

        accelerator, device = make_accelerator(self.device)
        if self.swa and accelerator.num_processes > 1:
            raise ParameterError(
                "swa=True is not supported with distributed='accelerate' over "
                f"{accelerator.num_processes} processes (the weight average and its "
                "batch-norm refresh are not sharded); set swa=False, or train "
                "in one process."
            )
        return accelerator, device

    def _resolve_execution(self, device):
        """``(precision, channels_last, inference_channels_last)`` on ``device``.

        "auto" is decided from the device: see
        :func:`~sklearn_rfcnn.utils._torch.resolve_precision` and
        :func:`~sklearn_rfcnn.utils._torch.resolve_channels_last` (the layout
        once for training, once for inference).
        """
        precision = resolve_precision(self.precision, device)
        layout = [
            resolve_channels_last(self.channels_last, device, precision, inference)
            for inference in (False, True)
        ]
        return precision, *layout

    def _optimizer_implementation(self, device):
        """skorch's ``optimizer__fused=True`` on CPU and CUDA, else nothing.

        torch's fused Adam / AdamW step updates every parameter in one
        vectorised kernel instead of a Python loop of element-wise operations
        per tensor: on a 2-core AVX-512 EPYC the step of CP-ResNet measured
        3x faster at width 128 (3.6 M parameters), and a ``partial_fit`` of
        two batches at width 8 took 19% less time (``benchmarks/speed.py``,
        sections ``ops`` and ``profile``).  Its result differs from the
        loop's by about one float32 ulp per step.  Left out where
        ``net_params`` chooses the implementation (``optimizer__foreach`` or
        ``optimizer__fused``).
        """
        chosen = {"optimizer__foreach", "optimizer__fused"} & set(self.net_params or {})
        if chosen or torch.device(device).type not in ("cpu", "cuda"):
            return {}
        return {"optimizer__fused": True}

    def _execution_summary(self, device, module=None):
        """One line saying how the net runs on ``device`` and why (``fit``).

        With ``module`` (the network), it also says when the training computes
        the weight gradients of its wide convolutions in NCHW
        (:mod:`~sklearn_rfcnn.utils._conv_grad`).
        """
        name = {"32": "float32", "bf16": "bf16 autocast", "16": "float16 autocast"}
        text = f"{type(self).__name__}: {device}, {name[self.precision_]}"
        if self.precision == "auto" and device.startswith("cpu"):
            flags = cpu_native_bf16()
            text += (
                f" (native bf16: {', '.join(flags)})"
                if flags
                else " (no native bf16 on this CPU)"
            )
        names = {True: "channels-last", False: "contiguous (NCHW)"}
        text += f", {names[self.channels_last_]} memory format"
        if (
            module is not None
            and _conv_grad.nchw_weight_grads_pay(
                device, self.precision_, self.channels_last_
            )
            and _conv_grad.has_wide_convs(module)
        ):
            text += (
                " (the weight gradients of wide convolutions in NCHW, on maps"
                f" of {_conv_grad.MIN_PIXELS} positions or more)"
            )
        if self.inference_channels_last_ != self.channels_last_:
            text += f" ({names[self.inference_channels_last_]} for inference)"
        auto = [p for p in ("precision", "channels_last") if getattr(self, p) == "auto"]
        if auto:
            text += f"; chosen by {' and '.join(f'{p}=auto' for p in auto)}"
        return text
