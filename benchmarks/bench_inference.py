"""Inference passes: batch norms folded into convolutions, strided max-pooling.

Two sections, side by side in one process, with freed buffers kept mapped as
the estimators keep them (``keep_freed_memory``):

* ``pool``: the 2x2 max-pool of a channels-last map without gradient
  (CP-ResNet's pools on 128x216 input at width 24, batch 32, and on 256x431
  at width 128, batch 8), in bf16 and float32, through torch's kernel
  (``F.max_pool2d``) and through
  :func:`~sklearn_rfcnn.models._layers.strided_max_pool2x2`, interleaved for
  ``--reps`` rounds; the medians, their ratio, and whether
  ``strided_max_pool_pays`` takes the map;
* ``inference``: CP-ResNet's inference pass in the mode ``precision="auto",
  channels_last="auto"`` picks on this CPU (eval mode, ``inference_mode``, the
  estimators' inference layout), at widths 24 (``speed.MODEL_CONFIGS
  ["small"]``) and 128 (``["paper"]``), three ways interleaved for ``--iters``
  rounds: ``before`` (the network as it is, torch's max-pool kernel),
  ``folded`` (:func:`~sklearn_rfcnn.models._fold.fold_batch_norms`, torch's
  pool) and ``folded_pool`` (both, what the estimators run under mixed
  precision; in float32 they run ``before`` with the strided pool where it
  pays); and what the cached folded copy costs: built afresh, brought up to
  date after a weight changed (``folded_for_inference``), found unchanged.

To stand in for an AVX2-only CPU on a newer one::

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 \\
        python benchmarks/bench_inference.py

Usage::

    python benchmarks/bench_inference.py           # both sections, ~3 min on 2 cores
    python benchmarks/bench_inference.py --quick   # small shapes, seconds

The machine (``_common.machine_info``) is printed with the figures; results go
to ``benchmarks/results/bench_inference_<cpu>.json`` (``--out`` overrides).
"""

import contextlib
import copy
import statistics
import sys

import torch
import torch.nn.functional as F
from _common import format_machine, sectioned_main, time_rounds

from sklearn_rfcnn.models import _layers, create_model
from sklearn_rfcnn.models._fold import fold_batch_norms, folded_for_inference
from sklearn_rfcnn.utils._malloc import keep_freed_memory, malloc_tunable
from sklearn_rfcnn.utils._torch import AMP_DTYPES, seeded_torch

CL = torch.channels_last
DTYPES = {"bf16": torch.bfloat16, "float32": torch.float32}
#: (N, C, H, W) of the maps CP-ResNet pools (rho=5; first stage), and two
#: smaller ones.
POOL_MAPS = (
    (32, 24, 63, 107),
    (32, 24, 31, 53),
    (8, 24, 31, 53),
    (8, 24, 15, 26),
    (8, 128, 127, 215),
    (8, 128, 63, 107),
)
QUICK_POOL_MAPS = ((4, 24, 15, 26),)
#: inference widths -> speed.MODEL_CONFIGS entry.
CONFIGS = {24: "small", 128: "paper"}


def pool_times(shape, dtype, reps=11, seed=0):
    """Median seconds of torch's max-pool kernel and the strided one."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen).to(dtype).contiguous(memory_format=CL)
    with torch.inference_mode():
        calls = {
            "torch": lambda: F.max_pool2d(x, 2),
            "strided": lambda: _layers.strided_max_pool2x2(x),
        }
        if not torch.equal(calls["torch"](), calls["strided"]()):
            raise AssertionError(f"strided max-pool differs from torch's on {shape}")
        times = time_rounds(calls, reps)
        taken = _layers.strided_max_pool_pays(x)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "torch_ms": 1e3 * med["torch"],
        "strided_ms": 1e3 * med["strided"],
        "speedup": med["torch"] / med["strided"],
        "strided_taken": taken,
    }


@contextlib.contextmanager
def _torch_pool():
    """Every ``TinySafeMaxPool2d`` runs torch's kernel inside the block."""
    pays = _layers.strided_max_pool_pays
    _layers.strided_max_pool_pays = lambda x: False
    try:
        yield
    finally:
        _layers.strided_max_pool_pays = pays


def inference_times(width, iters=7, quick=False, seed=0):
    """Seconds of the ``auto`` inference pass, three ways, interleaved."""
    from speed import MODEL_CONFIGS, _autocast, _memory_format, auto_mode

    cfg = copy.deepcopy(MODEL_CONFIGS["tiny" if quick else CONFIGS[width]])
    precision, inference_cl = auto_mode("cpu")
    if not isinstance(inference_cl, bool):  # (training, inference)
        inference_cl = inference_cl[1]
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg["batch"], 1, *cfg["input"], generator=gen)
    fmt = _memory_format(inference_cl)
    x = x.contiguous(memory_format=fmt)
    with seeded_torch(seed):
        model = create_model("cp_resnet", head="pooled", **cfg["model"])
    model = model.to(memory_format=fmt).eval()
    folded = fold_batch_norms(model)

    def run(net, torch_pool):
        def call():
            with (
                torch.inference_mode(),
                _autocast("cpu", precision),
                _torch_pool() if torch_pool else contextlib.nullcontext(),
            ):
                return net(x)

        return call

    calls = {
        "before": run(model, True),
        "folded": run(folded, True),
        "folded_pool": run(folded, False),
    }
    outs = {name: fn().float() for name, fn in calls.items()}
    times = time_rounds(calls, iters)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    copy_ms = _folded_copy_ms(model, AMP_DTYPES[precision], 2 if quick else iters)
    scale = outs["before"].abs().max().item() or 1.0
    return {
        "config": cfg,
        "precision": precision,
        "channels_last": inference_cl,
        "batch_norms": [
            sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
            for net in (model, folded)
        ],
        "max_abs_diff_over_max_abs": {
            name: (outs[name] - outs["before"]).abs().max().item() / scale
            for name in ("folded", "folded_pool")
        },
        "seconds": {name: [round(t, 4) for t in ts] for name, ts in times.items()},
        "median_ms": {name: 1e3 * t for name, t in med.items()},
        "folded_copy_ms": copy_ms,
        "speedup_median": {
            name: med["before"] / med[name] for name in ("folded", "folded_pool")
        },
        "speedup_best": {
            name: min(times["before"]) / min(times[name])
            for name in ("folded", "folded_pool")
        },
    }


def _folded_copy_ms(model, dtype, rounds):
    """Median ms to fold ``model`` afresh, to bring the cached copy up to date
    after a weight changed in place, and to find it unchanged
    (``folded_for_inference``)."""
    weight = next(model.parameters())

    def refresh():
        with torch.no_grad():
            weight.add_(0.0)  # a new version: the copy must follow
        folded_for_inference(model, dtype)

    calls = {
        "build": lambda: fold_batch_norms(model, dtype),
        "refresh": refresh,
        "unchanged": lambda: folded_for_inference(model, dtype),
    }
    folded_for_inference(model, dtype)
    times = time_rounds(calls, rounds)
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def run(sections, quick=False, reps=11, iters=7, widths=tuple(CONFIGS)):
    """Both sections inside ``keep_freed_memory``, as the estimators infer."""
    results = {"allocator_left_alone": malloc_tunable()}
    with keep_freed_memory(True, release=False):
        if "pool" in sections:
            results["pool"] = {}
            for shape in QUICK_POOL_MAPS if quick else POOL_MAPS:
                for name, dtype in DTYPES.items():
                    print(f"pool {name} {shape}", flush=True)
                    results["pool"][f"{name}_{'x'.join(map(str, shape))}"] = {
                        "dtype": name,
                        "shape": list(shape),
                        **pool_times(shape, dtype, reps),
                    }
        if "inference" in sections:
            results["inference"] = {}
            for width in widths[:1] if quick else widths:
                print(f"inference width {width}", flush=True)
                results["inference"][f"width{width}"] = inference_times(
                    width, iters=2 if quick else iters, quick=quick
                )
    return results


def report(doc):
    res = doc["results"]
    lines = [format_machine(doc["machine"])]
    if "pool" in res:
        lines.append(
            "2x2 max-pool without gradient, channels-last, median ms: torch's "
            "kernel / strided maxima (speed-up; * = strided_max_pool_pays)"
        )
        for r in res["pool"].values():
            lines.append(
                f"  {r['dtype']:7s} {tuple(r['shape'])!s:20s} {r['torch_ms']:7.2f} / "
                f"{r['strided_ms']:7.2f}  x{r['speedup']:.2f}"
                + (" *" if r["strided_taken"] else "")
            )
    if "inference" in res:
        lines.append(
            "CP-ResNet inference pass in auto, against the network as it is "
            "(median speed-up, best)"
        )
        for name, r in res["inference"].items():
            before, after = r["batch_norms"]
            med, best = r["speedup_median"], r["speedup_best"]
            lines.append(
                f"  {name} ({r['precision']}, channels_last={r['channels_last']}, "
                f"{before} -> {after} batch norms): folded x{med['folded']:.2f} "
                f"(x{best['folded']:.2f}); folded + strided pool "
                f"x{med['folded_pool']:.2f} (x{best['folded_pool']:.2f}); "
                f"{r['median_ms']['before']:.1f} -> "
                f"{r['median_ms']['folded_pool']:.1f} ms"
            )
            c = r["folded_copy_ms"]
            lines.append(
                f"    folded copy: built {c['build']:.1f} ms, brought up to date "
                f"{c['refresh']:.1f} ms, found unchanged {c['unchanged']:.2f} ms"
            )
    return "\n".join(lines)


def main(argv=None):
    return sectioned_main(
        "bench_inference",
        __doc__,
        ["pool", "inference"],
        run,
        report,
        option=("--widths", {"type": int, "default": list(CONFIGS)}),
        argv=argv,
        reps=11,
        iters=9,
        quick_help="small maps, tiny network",
    )


if __name__ == "__main__":
    sys.exit(main())
