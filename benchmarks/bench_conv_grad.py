"""Channels-last convolution gradients on this CPU, and the NCHW weight gradient.

Two sections, float32, side by side in one process, with freed buffers
kept mapped as the estimators keep them (``keep_freed_memory``):

* ``kernels``: each 3x3 convolution shape of CP-ResNet's stages (the paper's
  width 128, batch 8, 256x431 input; width 24, batch 32, 128x216) timed
  forward, for the input gradient and for the weight gradient
  (``aten.convolution_backward`` with one output), in the default layout
  (NCHW), in channels-last (NHWC), and the weight gradient of channels-last
  tensors computed from NCHW copies (what
  :class:`~sklearn_rfcnn.utils._conv_grad.nchw_weight_grads` does), best of
  ``--reps``;
* ``step``: CP-ResNet's training step (zero_grad, forward, loss, backward;
  ``speed.MODEL_CONFIGS``) in NCHW, in channels-last, and in channels-last
  inside ``nchw_weight_grads``, interleaved for ``--iters`` rounds, as
  ratios to NCHW.

On an AVX2 oneDNN (no AVX-512) the channels-last weight gradient of the wide
convolutions is the slow kernel; where AVX-512 is there the re-routing costs
two copies and gains nothing (``nchw_weight_grads_pay`` is then False; the
script measures it anyway).  To stand in for an AVX2-only CPU on a newer one::

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 \
        python benchmarks/bench_conv_grad.py

Usage::

    python benchmarks/bench_conv_grad.py              # both sections, ~4 min on 2 cores
    python benchmarks/bench_conv_grad.py --quick      # small shapes, seconds

The machine (``_common.machine_info``) is printed with the figures; results go
to ``benchmarks/results/bench_conv_grad_<cpu>.json`` (``--out`` overrides).
"""

import contextlib
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from _common import format_machine, sectioned_main, time_rounds

from sklearn_rfcnn.models import create_model
from sklearn_rfcnn.utils._conv_grad import nchw_weight_grads, nchw_weight_grads_pay
from sklearn_rfcnn.utils._malloc import keep_freed_memory, malloc_tunable
from sklearn_rfcnn.utils._torch import seeded_torch

CL = torch.channels_last

#: name -> (batch, channels, height, width) of the 3x3 convolutions' input:
#: CP-ResNet's stages at the paper's width (first three) and at width 24.
SHAPES = {
    "w128_stage1": (8, 128, 127, 215),
    "w128_stage2": (8, 128, 63, 107),
    "w128_stage3": (8, 256, 15, 26),
    "w24_stage1": (32, 24, 63, 107),
    "w24_stage2": (32, 48, 31, 53),
    "w24_stage3": (32, 96, 15, 26),
}
QUICK_SHAPES = {"quick_wide": (2, 64, 31, 53), "quick_narrow": (2, 16, 31, 53)}

#: training-step configurations: speed.MODEL_CONFIGS' names.
STEP_CONFIGS = ("paper", "small")

_convolution_backward = torch.ops.aten.convolution_backward


def _best_ms(fn, reps):
    fn()  # warm-up: kernel choice, first touch
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def kernel_times(shape, reps=3, seed=0):
    """Best ms of a 3x3 same-padded convolution's three kernels per layout."""
    gen = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    x = torch.randn(n, c, h, w, generator=gen)
    weight = 0.05 * torch.randn(c, c, 3, 3, generator=gen)
    grad = torch.randn(n, c, h, w, generator=gen)
    cl = [t.contiguous(memory_format=CL) for t in (x, weight, grad)]
    conv = ([1, 1], [1, 1], [1, 1], False, [0, 0], 1)

    def backward(x, weight, grad, which):
        mask = [which == "input", which == "weight", False]
        return lambda: _convolution_backward(grad, x, weight, None, *conv, mask)

    def via_nchw():
        xc, wc, gc = cl
        _convolution_backward(
            gc.contiguous(),
            xc.contiguous(),
            wc.contiguous(),
            None,
            *conv,
            [False, True, False],
        )

    return {
        "forward_nchw": _best_ms(lambda: F.conv2d(x, weight, padding=1), reps),
        "forward_cl": _best_ms(lambda: F.conv2d(cl[0], cl[1], padding=1), reps),
        "input_grad_nchw": _best_ms(backward(x, weight, grad, "input"), reps),
        "input_grad_cl": _best_ms(backward(*cl, "input"), reps),
        "weight_grad_nchw": _best_ms(backward(x, weight, grad, "weight"), reps),
        "weight_grad_cl": _best_ms(backward(*cl, "weight"), reps),
        "weight_grad_cl_via_nchw": _best_ms(via_nchw, reps),
    }


def _train_step(config, channels_last, rerouted, seed=0):
    from speed import MODEL_CONFIGS

    cfg = MODEL_CONFIGS[config]
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg["batch"], 1, *cfg["input"], generator=gen)
    y = (
        torch.rand(cfg["batch"], cfg["model"]["n_classes"], generator=gen) < 0.1
    ).float()
    with seeded_torch(seed):  # the same initial weights in every variant
        model = create_model("cp_resnet", head="pooled", **cfg["model"]).train()
    if channels_last:
        model = model.to(memory_format=CL)
        x = x.contiguous(memory_format=CL)

    def step():
        model.zero_grad(set_to_none=True)
        with nchw_weight_grads(model) if rerouted else contextlib.nullcontext():
            out = model(x)
        F.binary_cross_entropy_with_logits(out, y).backward()

    return step


STEP_VARIANTS = {
    "nchw": (False, False),
    "channels_last": (True, False),
    "channels_last_nchw_weight_grads": (True, True),
}


def step_times(config, iters=5):
    """Seconds of each variant's training step, interleaved, one warm-up each."""
    steps = {name: _train_step(config, *v) for name, v in STEP_VARIANTS.items()}
    for fn in steps.values():
        fn()
    times = time_rounds(steps, iters)
    base = statistics.median(times["nchw"])
    return {
        name: {
            "seconds": [round(t, 4) for t in ts],
            "median_s": statistics.median(ts),
            "speedup_vs_nchw_median": base / statistics.median(ts),
            "speedup_vs_nchw_best": min(times["nchw"]) / min(ts),
        }
        for name, ts in times.items()
    }


def run(sections, quick=False, reps=3, iters=5, configs=STEP_CONFIGS):
    """Both sections inside ``keep_freed_memory``, as the estimators train.

    Freed buffers then stay mapped for the next call: without it every
    activation-sized output (and every copy the re-routing makes) is faulted
    in page by page, which at the paper's width cost a third of the step
    (``bench_malloc.py``) and would be charged to the kernels here.
    """
    results = {
        "nchw_weight_grads_pay": nchw_weight_grads_pay("cpu", "32", True),
        # None: the heap is kept; else why the allocator was left as it is
        "allocator_left_alone": malloc_tunable(),
    }
    with keep_freed_memory(True, release=False):
        _run_sections(results, sections, quick, reps, iters, configs)
    return results


def _run_sections(results, sections, quick, reps, iters, configs):
    if "kernels" in sections:
        shapes = QUICK_SHAPES if quick else SHAPES
        results["kernels"] = {}
        for name, shape in shapes.items():
            print(f"kernels {name} {shape}", flush=True)
            results["kernels"][name] = {
                "shape": list(shape),
                **kernel_times(shape, reps),
            }
    if "step" in sections:
        results["step"] = {}
        for config in ["tiny"] if quick else configs:
            print(f"step {config}", flush=True)
            results["step"][config] = step_times(config, iters=2 if quick else iters)


def report(doc):
    res = doc["results"]
    lines = [
        format_machine(doc["machine"]),
        "nchw_weight_grads_pay on this CPU (float32, channels-last): "
        f"{res['nchw_weight_grads_pay']}; freed buffers kept as the estimators "
        "keep them: "
        + (
            "yes"
            if res.get("allocator_left_alone") is None
            else f"no ({res['allocator_left_alone']})"
        ),
    ]
    if "kernels" in res:
        lines.append(
            "3x3 convolution kernels, best ms: forward / input grad / weight grad, "
            "NCHW vs channels-last; the weight grad of channels-last tensors via NCHW"
        )
        for name, r in res["kernels"].items():
            lines.append(
                f"  {name:13s} {tuple(r['shape'])}: fwd {r['forward_nchw']:.1f} / "
                f"{r['forward_cl']:.1f}  dgrad {r['input_grad_nchw']:.1f} / "
                f"{r['input_grad_cl']:.1f}  wgrad {r['weight_grad_nchw']:.1f} / "
                f"{r['weight_grad_cl']:.1f}, "
                f"via NCHW {r['weight_grad_cl_via_nchw']:.1f}"
            )
    if "step" in res:
        lines.append("CP-ResNet training step, float32, speed vs NCHW (median, best)")
        for config, r in res["step"].items():
            parts = [
                f"{name} x{v['speedup_vs_nchw_median']:.2f} "
                f"(x{v['speedup_vs_nchw_best']:.2f}, {1e3 * v['median_s']:.0f} ms)"
                for name, v in r.items()
            ]
            lines.append(f"  {config}: " + "  ".join(parts))
    return "\n".join(lines)


def main(argv=None):
    return sectioned_main(
        "bench_conv_grad",
        __doc__,
        ["kernels", "step"],
        run,
        report,
        option=(
            "--configs",
            {"choices": list(STEP_CONFIGS), "default": list(STEP_CONFIGS)},
        ),
        argv=argv,
        quick_reps=1,
        reps=3,
        iters=5,
        quick_help="small shapes, tiny network",
    )


if __name__ == "__main__":
    sys.exit(main())
