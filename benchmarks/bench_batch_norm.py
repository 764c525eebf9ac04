"""Training-mode batch norm of channels-last maps: torch's kernel and wide rows.

Three sections, side by side in one process, with freed buffers kept mapped as
the estimators keep them (``keep_freed_memory``):

* ``kernels``: batch norm's forward and backward pass (the input, weight and
  bias gradients) of a channels-last ``(32, C, 63, 107)`` map (CP-ResNet's
  first stage on 128x216 input) for channel counts 8 to 64, in bf16 (as
  autocast gives it) and float32, through torch's kernel (``F.batch_norm``)
  and through :func:`~sklearn_rfcnn.models._batch_norm.wide_row_batch_norm`,
  interleaved for ``--reps`` rounds; the median of each and their ratio;
* ``sizes``: the same for 24 channels in bf16 over map sizes from 70 k to
  5.2 M values (the floor ``MIN_VALUES`` below which torch's kernel is kept);
* ``step``: CP-ResNet's training step (zero_grad, forward, loss, backward) in
  the mode ``precision="auto", channels_last="auto"`` picks on this CPU, at
  widths 24 (``speed.MODEL_CONFIGS["small"]``: 24-channel first stages, the
  wide rows' case) and 16 and 32 (every count a multiple of 16: nothing may
  change), with the wide rows on and off (``RFCNN_WIDE_ROW_BATCH_NORM``),
  interleaved for ``--iters`` rounds.

Whether a layer takes the wide rows is ``wide_rows``' rule (two torch
threads or more, maps of ``MIN_VALUES`` values or more, bf16 or float16 with
a channel count that is not a multiple of 16, float32 below 16 channels);
the kernels and sizes sections measure every case regardless, so that the
rule can be checked on another CPU or thread count (``--threads``).  To stand in for
an AVX2-only CPU on a newer one::

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 \\
        python benchmarks/bench_batch_norm.py

Usage::

    python benchmarks/bench_batch_norm.py           # all sections, ~5 min on 2 cores
    python benchmarks/bench_batch_norm.py --quick   # small shapes, seconds

The machine (``_common.machine_info``) is printed with the figures; results go
to ``benchmarks/results/bench_batch_norm_<cpu>.json`` (``--out`` overrides).
"""

import copy
import os
import statistics
import sys

import torch
import torch.nn.functional as F
from _common import format_machine, sectioned_main, time_rounds

from sklearn_rfcnn.models import create_model
from sklearn_rfcnn.models._batch_norm import (
    ENV_VAR,
    positions_per_row,
    wide_row_batch_norm,
    wide_rows,
)
from sklearn_rfcnn.utils._malloc import keep_freed_memory, malloc_tunable
from sklearn_rfcnn.utils._torch import seeded_torch

CL = torch.channels_last
CHANNELS = (8, 16, 24, 32, 40, 48, 64)
DTYPES = {"bf16": torch.bfloat16, "float32": torch.float32}
#: (batch, height, width) of the kernels' maps.
MAP = (32, 63, 107)
QUICK_MAP = (4, 15, 26)
#: (batch, height, width) of the ``sizes`` section's 24-channel bf16 maps:
#: CP-ResNet's width-24 stages on 128x216 input at batches 32 and 8.
SIZES = (
    (32, 7, 13),
    (32, 15, 26),
    (8, 31, 53),
    (32, 31, 53),
    (8, 63, 107),
    (32, 63, 107),
)
QUICK_SIZES = ((4, 7, 13), (4, 15, 26))
#: training-step widths (speed.MODEL_CONFIGS["small"] otherwise).
STEP_WIDTHS = (24, 16, 32)


def _pass(x, weight, bias, grad, wide):
    """One training-mode batch norm, forward and backward."""
    x = x.detach().requires_grad_()
    weight.grad = bias.grad = None
    if wide:
        k = positions_per_row(x.shape[1])
        y = wide_row_batch_norm(x, weight, bias, None, None, 0.1, 1e-5, k)
    else:
        y = F.batch_norm(x, None, None, weight, bias, True, 0.1, 1e-5)
    y.backward(grad)


def kernel_times(channels, dtype, shape=MAP, reps=11, seed=0):
    """Median seconds of a forward and backward pass, torch's kernel and wide rows."""
    gen = torch.Generator().manual_seed(seed)
    n, h, w = shape
    x = torch.randn(n, channels, h, w, generator=gen).to(dtype)
    x = x.contiguous(memory_format=CL)
    grad = torch.randn(x.shape, generator=gen).to(dtype).contiguous(memory_format=CL)
    weight = torch.rand(channels, generator=gen).requires_grad_()
    bias = torch.randn(channels, generator=gen).requires_grad_()
    calls = {
        "torch": lambda: _pass(x, weight, bias, grad, wide=False),
        "wide_rows": lambda: _pass(x, weight, bias, grad, wide=True),
    }
    for fn in calls.values():
        fn()  # warm-up, first touch
    times = time_rounds(calls, reps)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "torch_ms": 1e3 * med["torch"],
        "wide_rows_ms": 1e3 * med["wide_rows"],
        "speedup": med["torch"] / med["wide_rows"],
        "wide_rows_taken": wide_rows(x) is not None,
    }


def _config(width, quick):
    from speed import MODEL_CONFIGS

    cfg = copy.deepcopy(MODEL_CONFIGS["tiny" if quick else "small"])
    if not quick:
        cfg["model"]["width"] = width
    return cfg


def step_times(width, iters=7, quick=False, seed=0):
    """Seconds of the ``auto`` training step with wide rows on and off, interleaved."""
    from speed import _mode, _steps

    cfg = _config(width, quick)
    precision, channels_last = _mode("auto", "cpu")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg["batch"], 1, *cfg["input"], generator=gen)
    y = (
        torch.rand(cfg["batch"], cfg["model"]["n_classes"], generator=gen) < 0.1
    ).float()
    with seeded_torch(seed):
        model = create_model("cp_resnet", head="pooled", **cfg["model"])
    train_step, _ = _steps(model, x, y, precision, channels_last)

    def switched(value):
        def step():
            before = os.environ.get(ENV_VAR)
            os.environ[ENV_VAR] = value
            try:
                train_step()
            finally:
                if before is None:
                    del os.environ[ENV_VAR]
                else:
                    os.environ[ENV_VAR] = before

        return step

    calls = {"torch": switched("0"), "wide_rows": switched("1")}
    for fn in calls.values():
        fn()
    times = time_rounds(calls, iters)
    layers = _wide_layers(model, x, precision, channels_last)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "config": cfg,
        "precision": precision,
        "channels_last": channels_last,
        "batch_norms_on_wide_rows": layers,
        "seconds": {name: [round(t, 4) for t in ts] for name, ts in times.items()},
        "speedup_median": med["torch"] / med["wide_rows"],
        "speedup_best": min(times["torch"]) / min(times["wide_rows"]),
        "median_ms": {name: 1e3 * t for name, t in med.items()},
    }


def _wide_layers(model, x, precision, channels_last):
    """``[taken, total]`` batch norms of a training forward pass."""
    from speed import _autocast, _memory_format

    seen = []
    hooks = [
        m.register_forward_pre_hook(lambda m, args: seen.append(wide_rows(args[0])))
        for m in model.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    ]
    try:
        model.train()
        with torch.no_grad(), _autocast("cpu", precision):
            model(x.contiguous(memory_format=_memory_format(channels_last)))
    finally:
        for h in hooks:
            h.remove()
    return [sum(k is not None for k in seen), len(seen)]


def run(sections, quick=False, reps=11, iters=7, widths=STEP_WIDTHS):
    """Both sections inside ``keep_freed_memory``, as the estimators train."""
    results = {"allocator_left_alone": malloc_tunable()}
    with keep_freed_memory(True, release=False):
        if "kernels" in sections:
            results["kernel_map"] = list(QUICK_MAP if quick else MAP)
            results["kernels"] = {}
            for name, dtype in DTYPES.items():
                for c in (8, 24) if quick else CHANNELS:
                    print(f"kernels {name} C={c}", flush=True)
                    results["kernels"][f"{name}_c{c}"] = {
                        "dtype": name,
                        "channels": c,
                        **kernel_times(c, dtype, QUICK_MAP if quick else MAP, reps),
                    }
        if "sizes" in sections:
            results["sizes"] = {}
            for shape in QUICK_SIZES if quick else SIZES:
                print(f"sizes bf16 C=24 {shape}", flush=True)
                n, h, w = shape
                results["sizes"]["x".join(map(str, shape))] = {
                    "shape": [n, 24, h, w],
                    "values": n * 24 * h * w,
                    **kernel_times(24, torch.bfloat16, shape, reps),
                }
        if "step" in sections:
            results["step"] = {}
            for width in widths[:1] if quick else widths:
                print(f"step width {width}", flush=True)
                results["step"][f"width{width}"] = step_times(
                    width, iters=2 if quick else iters, quick=quick
                )
    return results


def _kernel_row(label, r):
    return (
        f"  {label} {r['torch_ms']:7.2f} / {r['wide_rows_ms']:7.2f}  "
        f"x{r['speedup']:.2f}" + (" *" if r["wide_rows_taken"] else "")
    )


def report(doc):
    res = doc["results"]
    lines = [format_machine(doc["machine"])]
    if "kernels" in res:
        lines.append(
            "batch norm forward + backward, channels-last (N, H, W) = "
            f"{tuple(res['kernel_map'])} maps, median ms: "
            "torch's kernel / wide rows (speed-up; * = wide_rows takes it)"
        )
        lines += [
            _kernel_row(f"{r['dtype']:7s} C={r['channels']:<3d}", r)
            for r in res["kernels"].values()
        ]
    if "sizes" in res:
        lines.append(
            "the same, bf16, 24 channels, by map size: torch's kernel / wide rows"
        )
        lines += [
            _kernel_row(f"{tuple(r['shape'])} ({r['values'] / 1e6:.2f} M values)", r)
            for r in res["sizes"].values()
        ]
    if "step" in res:
        lines.append(
            "CP-ResNet training step in auto, wide rows on vs off (median, best)"
        )
        for name, r in res["step"].items():
            taken, total = r["batch_norms_on_wide_rows"]
            lines.append(
                f"  {name} ({r['precision']}, channels_last={r['channels_last']}, "
                f"{taken}/{total} batch norms on wide rows): "
                f"x{r['speedup_median']:.2f} (x{r['speedup_best']:.2f}; "
                f"{r['median_ms']['torch']:.0f} -> "
                f"{r['median_ms']['wide_rows']:.0f} ms)"
            )
    return "\n".join(lines)


def main(argv=None):
    return sectioned_main(
        "bench_batch_norm",
        __doc__,
        ["kernels", "sizes", "step"],
        run,
        report,
        option=("--widths", {"type": int, "default": list(STEP_WIDTHS)}),
        argv=argv,
        reps=11,
        iters=7,
        quick_help="small maps, tiny network",
    )


if __name__ == "__main__":
    sys.exit(main())
