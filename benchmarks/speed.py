"""Speed on this machine: front end, model and estimator, each as a ratio.

One run gathers every speed figure of the library with the machine it was
measured on (CPU model and vector extensions incl. AMX, torch version,
threads), and expresses each figure as a ratio to a baseline measured *in the
same run*, interleaved, so that the ratios survive a shared, noisy machine:

``model``
    CP-ResNet training step (forward + BCE + backward) and inference
    (eval, ``inference_mode``), in samples/s, for the paper's width
    (``rho=5, width=128``, 1x256x431, batch 8) and a CPU-sized one
    (``width=24``, 1x128x216, batch 32).  Baseline: ``plain``, the same
    architecture written with stock layers in float32
    (``bench_model.plain_cp_resnet``), or, with ``--reference DIR``, the
    authors' own ``models/cp_resnet.py`` from a local checkout of
    ``kkoutini/cpjku_dcase19`` (loaded at run time, never copied here).
    Modes of ours: float32, float32 + channels-last, bf16 autocast, bf16 +
    channels-last, and ``auto``: what ``precision="auto",
    channels_last="auto"`` picks on this CPU.  bf16 modes are skipped on a
    CPU without native bf16 (emulated, ~10x slower) unless ``--modes`` asks.
``estimator``
    ``RFCNNClassifier.fit`` throughput (training clips per second over the
    epochs after the first) against the bare module's training step
    (zero_grad + forward + loss + backward + AdamW step) at the same batch
    size, precision and memory format, for float32 and for ``auto``; and
    where a fit's time goes (cProfile: forward, backward, optimizer,
    augmentation, data loading, the rest = skorch's per-batch bookkeeping
    and callbacks).  ``--compile`` adds skorch's ``compile=True``
    (``torch.compile``, inductor) as an estimator mode.
``frontend``, ``onnx``
    ``bench_frontend.run`` (the per-clip librosa loop is the baseline) and
    ``bench_onnx.run`` (torch float32 is the baseline), when present.

Usage::

    python benchmarks/speed.py                     # everything (~15 min on 2 cores)
    python benchmarks/speed.py --quick             # small sizes (~2 min)
    python benchmarks/speed.py --sections model --reference ~/src/cpjku_dcase19
    python benchmarks/speed.py --report benchmarks/results/speed_<machine>.json

Results go to ``benchmarks/results/speed_<machine>.json`` (one file per
machine kind, so that the figures of different CPUs sit side by side;
``--out`` overrides); ``benchmarks/README.md`` shows them.
"""

import argparse
import contextlib
import cProfile
import importlib.util
import inspect
import io
import json
import os
import pstats
import re
import statistics
import sys
import time
import types
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_model.py

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
import torch.nn.functional as F
from _common import RESULTS_DIR, format_machine, machine_info, write_results
from bench_model import plain_cp_resnet

from sklearn_rfcnn.models import create_model
from sklearn_rfcnn.utils._torch import (
    AMP_DTYPES,
    cpu_native_bf16,
    resolve_channels_last,
    resolve_precision,
)

MODEL_CONFIGS = {
    "paper": {
        "model": {"rho": 5, "width": 128, "n_classes": 56},
        "input": (256, 431),
        "batch": 8,
    },
    "small": {
        "model": {"rho": 5, "width": 24, "n_classes": 18},
        "input": (128, 216),
        "batch": 32,
    },
}

#: mode -> (precision, channels_last); "auto" is resolved for this CPU.
OUR_MODES = {
    "fp32": ("32", False),
    "fp32_cl": ("32", True),
    "bf16": ("bf16", False),
    "bf16_cl": ("bf16", True),
}


def auto_mode():
    """``(precision, channels_last)`` that "auto" picks on this CPU."""
    precision = resolve_precision("auto", "cpu")
    return precision, resolve_channels_last("auto", "cpu", precision)


# --------------------------------------------------------------------------
# the authors' reference model, from a local checkout
# --------------------------------------------------------------------------
def load_reference(repo, rho, width, n_classes):
    """Build the authors' CP-ResNet from ``repo/models/cp_resnet.py``.

    ``repo`` is a local checkout of ``kkoutini/cpjku_dcase19``; its
    ``shared_globals`` import (a logging console) is stubbed, and the model
    is configured as in the method notes §8 (basic blocks, depth 26, fixup
    init) with our width and class count.
    """
    path = Path(repo).expanduser() / "models" / "cp_resnet.py"
    if not path.is_file():
        raise SystemExit(
            f"--reference {repo}: no models/cp_resnet.py there; give a checkout "
            "of https://github.com/kkoutini/cpjku_dcase19"
        )
    stub = types.ModuleType("shared_globals")
    stub.console = types.SimpleNamespace(warning=print, info=print)
    sys.modules.setdefault("shared_globals", stub)
    spec = importlib.util.spec_from_file_location("_reference_cp_resnet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_model_based_on_rho(rho, config_only=True)
    config.update(base_channels=width, n_classes=n_classes, input_shape=[8, 1, -1, -1])
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its shapes once
        model = module.Network(config)
        model(torch.zeros(1, 1, 64, 64))
    return model


# --------------------------------------------------------------------------
# model section
# --------------------------------------------------------------------------
def _steps(model, x, y, precision, channels_last):
    """(train_step, forward) closures of one model in one mode."""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = AMP_DTYPES[precision]

    def ctx():
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=dtype)

    def train_step():
        model.train()
        model.zero_grad(set_to_none=True)
        with ctx():
            out = model(x)
        F.binary_cross_entropy_with_logits(out.float(), y).backward()

    def forward():
        model.eval()
        with torch.inference_mode(), ctx():
            model(x)

    return train_step, forward


def _interleaved(fns, warmup, iters):
    """Seconds of each call of every function, run round-robin."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(iters):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def _rates(times, batch):
    return {
        "best": batch / min(times),
        "median": batch / statistics.median(times),
        "seconds": [round(t, 4) for t in times],
    }


def bench_model_config(name, modes, warmup, iters, reference=None):
    cfg = MODEL_CONFIGS[name]
    torch.manual_seed(0)
    x = torch.randn(cfg["batch"], 1, *cfg["input"])
    y = (torch.rand(cfg["batch"], cfg["model"]["n_classes"]) < 0.1).float()
    models = {"plain": (plain_cp_resnet(**cfg["model"]), "32", False)}
    if reference:
        models["reference"] = (load_reference(reference, **cfg["model"]), "32", False)
    for mode in modes:
        precision, cl = OUR_MODES[mode] if mode != "auto" else auto_mode()
        models[mode] = (create_model("cp_resnet", **cfg["model"]), precision, cl)
    baseline = "reference" if reference else "plain"
    out = {"config": cfg, "baseline": baseline, "modes": {}}
    steps = {m: _steps(model, x, y, p, cl) for m, (model, p, cl) in models.items()}
    for kind, index in (("train", 0), ("inference", 1)):
        times = _interleaved(
            {m: s[index] for m, s in steps.items()}, warmup=warmup, iters=iters
        )
        for mode, t in times.items():
            rec = out["modes"].setdefault(
                mode, {"precision": models[mode][1], "channels_last": models[mode][2]}
            )
            rec[kind] = _rates(t, cfg["batch"])
        base = out["modes"][baseline][kind]
        for mode in times:
            rec = out["modes"][mode][kind]
            rec["x_baseline_best"] = rec["best"] / base["best"]
            rec["x_baseline_median"] = rec["median"] / base["median"]
    return out


# --------------------------------------------------------------------------
# estimator section
# --------------------------------------------------------------------------
#: cProfile function names -> fit stage (cumulative time).
_STAGES = {
    "forward": ("_cp_resnet.py", "forward", "CPResNet"),
    "backward": (
        "~",
        "<method 'run_backward' of 'torch._C._EngineBase' objects>",
        None,
    ),
    "optimizer": ("net.py", "_step_optimizer", None),
    "augmentation": ("_net.py", "augment", None),
    "data loading": ("dataloader.py", "__next__", None),
}


def _stage_shares(profile, total):
    stats = pstats.Stats(profile).stats
    shares = {}
    for stage, (file_end, func, owner) in _STAGES.items():
        # the network's own forward, not every nested module's (no double count)
        line = None
        if owner is not None:
            from sklearn_rfcnn import models

            line = inspect.getsourcelines(getattr(models, owner).forward)[1]
        seconds = sum(
            v[3]
            for (f, ln, fn), v in stats.items()
            if f.endswith(file_end) and fn == func and line in (None, ln)
        )
        shares[stage] = seconds / total
    shares["other (skorch per-batch bookkeeping, callbacks, loss)"] = max(
        0.0, 1.0 - sum(shares.values())
    )
    return shares


def _bare_step(model_kwargs, x, y, precision, channels_last, seed=0):
    torch.manual_seed(seed)
    model = create_model("cp_resnet", head="pooled", **model_kwargs)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    dtype = AMP_DTYPES[precision]
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        ctx = (
            contextlib.nullcontext() if dtype is None else torch.autocast("cpu", dtype)
        )
        with ctx:
            out = model(x)
        F.binary_cross_entropy_with_logits(out.float(), y).backward()
        opt.step()

    return step


def bench_estimator(n_clips, epochs, bare_iters, modes, compile_=False):
    from sklearn_rfcnn import RFCNNClassifier

    cfg = MODEL_CONFIGS["small"]
    batch = cfg["batch"]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_clips, 1, *cfg["input"])).astype(np.float32)
    Y = (rng.random((n_clips, cfg["model"]["n_classes"])) < 0.1).astype(np.int64)
    Y[0], Y[1] = 1, 0  # every tag has both values
    xb = torch.as_tensor(X[:batch])
    yb = torch.as_tensor(Y[:batch], dtype=torch.float32)
    model_kwargs = {k: v for k, v in cfg["model"].items() if k != "n_classes"}
    results = {}
    runs = [(mode, False) for mode in modes] + ([("auto", True)] if compile_ else [])
    for mode, compiled in runs:
        precision, cl = OUR_MODES[mode] if mode != "auto" else auto_mode()
        label = mode + ("_compile" if compiled else "")
        bare = _bare_step(
            {**model_kwargs, "n_classes": cfg["model"]["n_classes"]},
            xb,
            yb,
            precision,
            cl,
        )
        clf = RFCNNClassifier(
            **model_kwargs,
            max_epochs=epochs,
            batch_size=batch,
            precision=precision,
            channels_last=cl,
            device="cpu",
            verbose=0,
            random_state=0,
            net_params={"compile": True} if compiled else None,
        )
        before = _interleaved({"bare": bare}, warmup=2, iters=bare_iters)["bare"]
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        profile.enable()
        clf.fit(X, Y)
        profile.disable()
        fit_s = time.perf_counter() - t0
        after = _interleaved({"bare": bare}, warmup=0, iters=bare_iters)["bare"]
        durs = [float(d) for d in clf.history_[:, "dur"]]
        steady = durs[1:] if len(durs) > 1 else durs
        fit_rate = n_clips / statistics.median(steady)
        bare_times = before + after
        bare_rate = batch / statistics.median(bare_times)
        results[label] = {
            "precision": precision,
            "channels_last": cl,
            "compile": compiled,
            "fit_clips_per_s": fit_rate,
            "fit_epoch_s": durs,
            "fit_total_s": fit_s,
            "bare_step_samples_per_s": bare_rate,
            "bare_step_samples_per_s_best": batch / min(bare_times),
            "fit_x_bare": fit_rate / bare_rate,
            "fit_time_shares": _stage_shares(profile, fit_s),
        }
    base = results.get("fp32", next(iter(results.values())))
    for rec in results.values():
        rec["fit_x_fp32"] = rec["fit_clips_per_s"] / base["fit_clips_per_s"]
    return {"config": cfg, "n_clips": n_clips, "epochs": epochs, "modes": results}


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def _machine_slug(info):
    cpu = re.sub(r"[^a-z0-9]+", "-", info["cpu"].lower()).strip("-")
    ext = info["vector_extensions"]
    kind = (
        "amx"
        if "amx_bf16" in ext
        else "avx512bf16"
        if "avx512_bf16" in ext
        else "avx512"
        if "avx512f" in ext
        else "avx2"
        if "avx2" in ext
        else "generic"
    )
    return f"{cpu}-{kind}"


def report(doc):
    res = doc["results"]
    lines = [format_machine(doc["machine"])]
    lines.append(
        f"auto picks: precision={res['auto'][0]}, channels_last={res['auto'][1]}"
    )
    for name, m in res.get("model", {}).items():
        cfg = m["config"]
        lines.append(
            f"\nmodel {name}: CPResNet{cfg['model']}, input 1x{cfg['input'][0]}"
            f"x{cfg['input'][1]}, batch {cfg['batch']}; ratios to {m['baseline']} "
            "float32 (best / median of interleaved iterations)"
        )
        lines.append(
            f"{'mode':<12}{'train/s':>10}{'x train':>16}{'infer/s':>10}{'x infer':>16}"
        )
        for mode, r in m["modes"].items():
            tr, inf = r["train"], r["inference"]
            lines.append(
                f"{mode:<12}{tr['best']:>10.2f}"
                f"{tr['x_baseline_best']:>8.2f} /{tr['x_baseline_median']:>5.2f}"
                f"{inf['best']:>10.2f}"
                f"{inf['x_baseline_best']:>8.2f} /{inf['x_baseline_median']:>5.2f}"
            )
    est = res.get("estimator")
    if est:
        lines.append(
            f"\nestimator: RFCNNClassifier.fit, {est['n_clips']} clips, "
            f"{est['epochs']} epochs, width 24, batch 32"
        )
        lines.append(
            f"{'mode':<14}{'fit clips/s':>12}{'bare/s':>9}{'fit/bare':>9}{'x fp32':>8}"
            "   time shares"
        )
        for mode, r in est["modes"].items():
            shares = ", ".join(
                f"{k.split(' (')[0]} {v:.0%}" for k, v in r["fit_time_shares"].items()
            )
            lines.append(
                f"{mode:<14}{r['fit_clips_per_s']:>12.1f}"
                f"{r['bare_step_samples_per_s']:>9.1f}{r['fit_x_bare']:>9.2f}"
                f"{r['fit_x_fp32']:>8.2f}   {shares}"
            )
    for section in ("frontend", "onnx"):
        if section in res:
            summary = res[section].get("summary")
            lines.append(
                f"\n{section}: {json.dumps(summary) if summary else 'see JSON'}"
            )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, few iterations")
    p.add_argument(
        "--sections",
        nargs="+",
        default=["model", "estimator", "frontend", "onnx"],
        choices=["model", "estimator", "frontend", "onnx"],
    )
    p.add_argument("--configs", nargs="+", choices=list(MODEL_CONFIGS), default=None)
    p.add_argument(
        "--modes",
        nargs="+",
        choices=[*OUR_MODES, "auto"],
        default=None,
        help="our modes (default: all, bf16 only where the CPU has native bf16)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=None)
    p.add_argument(
        "--reference",
        default=None,
        metavar="DIR",
        help="local checkout of kkoutini/cpjku_dcase19: the authors' model as baseline",
    )
    p.add_argument("--compile", action="store_true", help="also fit with torch.compile")
    p.add_argument("--out", default=None)
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the other sections of an earlier run in the output file",
    )
    p.add_argument("--report", default=None, metavar="JSON", help="print a saved run")
    args = p.parse_args(argv)
    if args.report:
        print(report(json.loads(Path(args.report).read_text())))
        return 0

    started = time.time()
    torch.set_num_threads(args.threads)
    native = cpu_native_bf16()
    modes = args.modes or [
        m for m in (*OUR_MODES, "auto") if native or not m.startswith("bf16")
    ]
    info = machine_info()
    print(format_machine(info))
    results = {
        "auto": list(auto_mode()),
        "native_bf16": list(native),
        "modes": modes,
        "threads": args.threads,  # the sections may change torch's setting
    }
    if "model" in args.sections:
        configs = args.configs or (["small"] if args.quick else ["paper", "small"])
        iters = args.iters or (2 if args.quick else 6)
        results["model"] = {
            name: bench_model_config(
                name, modes, warmup=1, iters=iters, reference=args.reference
            )
            for name in configs
        }
    if "estimator" in args.sections:
        est_modes = [m for m in ("fp32", "auto") if m in modes or m == "fp32"]
        results["estimator"] = bench_estimator(
            n_clips=96 if args.quick else 320,
            epochs=2 if args.quick else 4,
            bare_iters=2 if args.quick else 5,
            modes=est_modes,
            compile_=args.compile,
        )
    for section, module_name in (
        ("frontend", "bench_frontend"),
        ("onnx", "bench_onnx"),
    ):
        if section not in args.sections:
            continue
        try:
            module = importlib.import_module(module_name)
            run = module.run
        except (ImportError, AttributeError) as exc:
            print(f"{section}: skipped ({exc})")
            continue
        results[section] = run(quick=args.quick)
    slug = _machine_slug(info) + ("_quick" if args.quick else "")
    out = Path(args.out) if args.out else RESULTS_DIR / f"speed_{slug}.json"
    if args.merge and out.exists():
        earlier = json.loads(out.read_text())["results"]
        results = {**earlier, **results}
    doc_path = write_results(f"speed_{slug}", results, started=started, path=out)
    print(report(json.loads(Path(doc_path).read_text())))
    print(f"wrote {doc_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
