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
    Our inference passes run the network the estimators' do (batch norms
    folded into the convolutions under mixed precision, ``models._fold``);
    our channels-last float32 training steps (and the bare loop's) run as
    the estimators' do: on an AVX2 CPU without AVX-512 with the wide
    convolutions' weight gradients in NCHW (``_training_forward``;
    ``bench_conv_grad.py`` compares with and without).
``estimator``
    ``RFCNNClassifier.fit`` throughput (training clips per second over the
    epochs after the first; 128 clips = 4 batches) against a bare training
    loop over the same batches (zero_grad + forward + loss + backward +
    AdamW step, :class:`_BareLoop`) at the same batch size, precision and
    memory format, for float32 and for ``auto``; and
    where a fit's time goes (cProfile: forward, backward, optimizer,
    augmentation, data loading, the rest = skorch's per-batch bookkeeping
    and callbacks).  ``--compile`` adds skorch's ``compile=True``
    (``torch.compile``, inductor) as an estimator mode, and ``auto_compile``
    (``auto`` with the network compiled; compilation in the warm-up) to the
    model section.
``peak``
    This machine's matrix-multiply rate in each precision the modes use
    (:func:`matmul_peak`, measured before and after the model section, the
    better kept); the model section gives each rate as the fraction of the
    peak in its precision that the network's FLOPs reach (``peak_fraction``).
``calls``
    ``partial_fit`` and ``predict_proba`` on two batches, per call, against
    the bare loop over the same batches and the float32 baseline's loop
    (:func:`bench_calls`), for the paper's width, width 24 and a tiny,
    overhead-dominated width 8.
``profile``
    Where the time of small calls goes (cProfile, :func:`profile_calls`).
``ops``
    Where ``auto``'s training step and inference pass spend their time, by
    operator group (convolutions, batch norm, ReLU, pooling, additions and
    copies, the rest; ``torch.profiler`` self time, :func:`op_shares`).
``frontend``, ``onnx``
    ``bench_frontend.run`` (the per-clip librosa loop is the baseline) and
    ``bench_onnx.run`` (torch float32 is the baseline), when present.

``--device cuda`` runs the same sections on a GPU (``benchmarks/gpu_check.py``,
``make gpu-check``, does so with the GPU tests); every call is then timed to
the end of its queued GPU work.

Usage::

    python benchmarks/speed.py                     # everything (~15 min on 2 cores)
    python benchmarks/speed.py --quick             # small sizes (~2 min)
    python benchmarks/speed.py --sections model --reference ~/src/cpjku_dcase19
    python benchmarks/speed.py --device cuda --sections peak model estimator calls
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

# OpenMP's wait policy is left to the environment and recorded with every
# figure: its default (spin, then sleep) is what a user's process gets, and
# PASSIVE (which the other scripts set, for busy shared machines) made the
# width-24 calls 1.24-1.44x slower (benchmarks/README.md, section 3).  On a
# busy machine, run with OMP_WAIT_POLICY=PASSIVE.

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
import torch.nn.functional as F
from _common import (
    RESULTS_DIR,
    format_machine,
    machine_info,
    machine_slug,
    write_results,
)
from bench_model import count_flops, plain_cp_resnet

from sklearn_rfcnn.models import create_model
from sklearn_rfcnn.models._fold import inference_module
from sklearn_rfcnn.utils._conv_grad import nchw_weight_grads, nchw_weight_grads_pay
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
    # overhead-dominated: the estimator's per-call and per-batch costs
    "tiny": {
        "model": {"rho": 2, "width": 8, "n_classes": 8},
        "input": (32, 64),
        "batch": 8,
    },
}

#: mode -> (precision, channels_last); "auto" is resolved for the device.
OUR_MODES = {
    "fp32": ("32", False),
    "fp32_cl": ("32", True),
    "bf16": ("bf16", False),
    "bf16_cl": ("bf16", True),
    "fp16_cl": ("16", True),
}

#: torch dtype of each precision (the matmul peak is measured in it).
PRECISION_DTYPES = {"32": torch.float32, "bf16": torch.bfloat16, "16": torch.float16}


def auto_mode(device="cpu"):
    """``(precision, channels_last)`` that "auto" picks on ``device``.

    The layout is a bool, or ``(training, inference)`` where "auto" decides
    the two phases differently (float32 on an AVX2-only CPU).
    """
    precision = resolve_precision("auto", device)
    train, infer = (
        resolve_channels_last("auto", device, precision, inference=phase)
        for phase in (False, True)
    )
    return precision, train if train == infer else [train, infer]


def _phase_layouts(channels_last):
    """``(training, inference)`` channels-last flags of a mode's layout."""
    if isinstance(channels_last, (list, tuple)):
        return tuple(channels_last)
    return channels_last, channels_last


def _layout_text(channels_last):
    """ " + channels-last", "" or the per-phase layouts, for the report."""
    train, infer = _phase_layouts(channels_last)
    if train == infer:
        return " + channels-last" if train else ""
    return f" + channels-last for {'training' if train else 'inference'} only"


def _memory_format(channels_last):
    return torch.channels_last if channels_last else torch.contiguous_format


class _PhaseLayouts:
    """A model's weights in the layout of the phase it runs in.

    The weights are converted when the phase changes, as the estimator's
    net does (``_RFCNNNet._use_layout``); ``current`` is the layout now.
    """

    def __init__(self, model, channels_last):
        self.model = model
        self.layouts = _phase_layouts(channels_last)
        self.current = None

    def enter(self, inference):
        want = self.layouts[int(inference)]
        if want != self.current:
            self.model.to(memory_format=_memory_format(want))
            self.current = want


def _mode(mode, device):
    return OUR_MODES[mode] if mode != "auto" else auto_mode(device)


def _sync(device):
    """Wait for the device's queued work (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _autocast(device, precision):
    dtype = AMP_DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def _training_forward(model, device, precision, channels_last):
    """The context of a training forward pass, as the estimators' net enters it.

    :class:`~sklearn_rfcnn.utils._conv_grad.nchw_weight_grads` where
    ``nchw_weight_grads_pay`` (float32 channels-last training on an AVX2 CPU
    without AVX-512), else nothing.
    """
    if nchw_weight_grads_pay(device, precision, channels_last):
        return nchw_weight_grads(model)
    return contextlib.nullcontext()


def matmul_peak(device="cpu", precisions=("32", "bf16"), seconds=1.0):
    """This machine's measured matrix-multiply rate (FLOP/s) per precision.

    The best of repeated square products (``n = 2048`` on a CPU, ``8192`` on
    a GPU) of random matrices in each precision's dtype, on torch's current
    threads -- the ceiling the network's convolutions (oneDNN / cuDNN
    implicit GEMMs) are compared with.  float32 on CUDA is measured with
    TF32 allowed exactly when cuDNN convolutions use it
    (``torch.backends.cudnn.allow_tf32``), so that the ratio compares like
    with like.
    """
    cuda = torch.device(device).type == "cuda"
    n = 8192 if cuda else 2048
    peaks = {}
    for precision in precisions:
        dtype = PRECISION_DTYPES[precision]
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(n, n, generator=gen).to(device, dtype)
        b = torch.randn(n, n, generator=gen).to(device, dtype)
        tf32 = torch.backends.cuda.matmul.allow_tf32
        if cuda and precision == "32":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32
        try:
            a @ b  # warm-up (kernel choice, first-touch)
            _sync(device)
            best, spent = float("inf"), 0.0
            while spent < seconds or best == float("inf"):
                t0 = time.perf_counter()
                a @ b
                _sync(device)
                dt = time.perf_counter() - t0
                best, spent = min(best, dt), spent + dt
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32
        peaks[precision] = 2 * n**3 / best
    return peaks


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
def _steps(model, x, y, precision, channels_last, device="cpu"):
    """(train_step, forward) closures of one model in one mode on ``device``.

    Each phase runs in its own layout (``_phase_layouts``); the weights are
    converted when the phase changes, and inference runs
    :func:`~sklearn_rfcnn.models._fold.inference_module` (the batch norms
    folded under mixed precision), as the estimator's net does.
    """
    model, y = model.to(device), y.to(device)
    layout = _PhaseLayouts(model, channels_last)
    xs = [
        x.to(device).contiguous(memory_format=_memory_format(cl))
        for cl in layout.layouts
    ]

    def train_step():
        layout.enter(inference=False)
        x = xs[0]
        model.train()
        model.zero_grad(set_to_none=True)
        with (
            _autocast(device, precision),
            _training_forward(model, device, precision, layout.current),
        ):
            out = model(x)
        F.binary_cross_entropy_with_logits(out.float(), y).backward()

    def forward():
        layout.enter(inference=True)
        x = xs[1]
        model.eval()
        net = inference_module(model, AMP_DTYPES[precision])
        with torch.inference_mode(), _autocast(device, precision):
            net(x)

    return train_step, forward


def _interleaved(fns, warmup, iters, device="cpu"):
    """Seconds of each call of every function, run round-robin.

    On a GPU every call is timed to the end of its queued work.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times = {name: [] for name in fns}
    for _ in range(iters):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def _rates(times, batch):
    return {
        "best": batch / min(times),
        "median": batch / statistics.median(times),
        "seconds": [round(t, 4) for t in times],
    }


def bench_model_config(
    name,
    modes,
    warmup,
    iters,
    reference=None,
    device="cpu",
    peaks=None,
    compile_=False,
):
    """Training step and inference of every mode against the float32 baseline.

    With ``peaks`` (:func:`matmul_peak`), each rate is also given as the
    fraction of the measured matmul peak in the mode's precision that the
    network's FLOPs (``bench_model.count_flops``) reach.
    """
    cfg = MODEL_CONFIGS[name]
    torch.manual_seed(0)
    x = torch.randn(cfg["batch"], 1, *cfg["input"])
    y = (torch.rand(cfg["batch"], cfg["model"]["n_classes"]) < 0.1).float()
    models = {"plain": (plain_cp_resnet(**cfg["model"]), "32", False)}
    if reference:
        models["reference"] = (load_reference(reference, **cfg["model"]), "32", False)
    for mode in modes:
        precision, cl = _mode(mode, device)
        models[mode] = (create_model("cp_resnet", **cfg["model"]), precision, cl)
    if compile_:
        precision, cl = _mode("auto", device)
        compiled = torch.compile(create_model("cp_resnet", **cfg["model"]))
        models["auto_compile"] = (compiled, precision, cl)
    baseline = "reference" if reference else "plain"
    fwd, fwd_bwd = count_flops(cfg["model"], cfg["input"])
    out = {
        "config": cfg,
        "baseline": baseline,
        "gflop_per_sample": {"inference": fwd / 1e9, "train": fwd_bwd / 1e9},
        "modes": {},
    }
    steps = {
        m: _steps(model, x, y, p, cl, device) for m, (model, p, cl) in models.items()
    }
    for kind, index in (("train", 0), ("inference", 1)):
        times = _interleaved(
            {m: s[index] for m, s in steps.items()},
            warmup=warmup,
            iters=iters,
            device=device,
        )
        flops = out["gflop_per_sample"][kind] * 1e9
        for mode, t in times.items():
            precision = models[mode][1]
            rec = out["modes"].setdefault(
                mode, {"precision": precision, "channels_last": models[mode][2]}
            )
            rec[kind] = _rates(t, cfg["batch"])
            if peaks and precision in peaks:
                rec[kind]["peak_fraction"] = (
                    flops * rec[kind]["best"] / peaks[precision]
                )
        base = out["modes"][baseline][kind]
        for mode in times:
            rec = out["modes"][mode][kind]
            rec["x_baseline_best"] = rec["best"] / base["best"]
            rec["x_baseline_median"] = rec["median"] / base["median"]
    del steps, models
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


class _BareLoop:
    """A hand-written training loop and inference of one network.

    The yardstick of the estimator: the same network, precision, memory
    format and batch size, zero_grad + forward + loss + backward + AdamW
    step per batch, host batches copied to the device (from pinned memory,
    without blocking, on a GPU) and given the memory format there, inference
    through :func:`~sklearn_rfcnn.models._fold.inference_module` (the
    network the estimators' inference runs) -- and nothing else (no
    validation, augmentation or bookkeeping).
    """

    def __init__(self, model, precision, channels_last, device="cpu"):
        self.model = model.to(device)
        self.layout = _PhaseLayouts(self.model, channels_last)
        self.layout.enter(inference=False)
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=1e-3, weight_decay=1e-2
        )
        self.precision, self.device = precision, device
        self.cuda = torch.device(device).type == "cuda"

    def _input(self, x):
        x = x.to(self.device, non_blocking=self.cuda)
        if self.layout.current:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def train(self, batches):
        self.layout.enter(inference=False)
        self.model.train()
        for x, y in batches:
            x, y = self._input(x), y.to(self.device, non_blocking=self.cuda)
            self.opt.zero_grad(set_to_none=True)
            with (
                _autocast(self.device, self.precision),
                _training_forward(
                    self.model, self.device, self.precision, self.layout.current
                ),
            ):
                out = self.model(x)
            F.binary_cross_entropy_with_logits(out.float(), y).backward()
            self.opt.step()

    def predict(self, batches):
        self.layout.enter(inference=True)
        self.model.eval()
        net = inference_module(self.model, AMP_DTYPES[self.precision])
        outs = []
        with torch.inference_mode():
            for x, _ in batches:
                with _autocast(self.device, self.precision):
                    outs.append(net(self._input(x)).float().cpu())
        return outs


def _host_batches(X, Y, batch, device):
    """``(x, y)`` torch batches of the arrays, pinned when ``device`` is a GPU."""
    pin = torch.device(device).type == "cuda"
    out = []
    for i in range(0, len(X), batch):
        x = torch.from_numpy(X[i : i + batch])
        y = torch.from_numpy(Y[i : i + batch].astype(np.float32))
        out.append((x.pin_memory(), y.pin_memory()) if pin else (x, y))
    return out


def _tagging_data(cfg, n_clips, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_clips, 1, *cfg["input"])).astype(np.float32)
    Y = (rng.random((n_clips, cfg["model"]["n_classes"])) < 0.1).astype(np.int64)
    Y[0], Y[1] = 1, 0  # every tag has both values
    return X, Y


def _estimators_bare_loop(cfg, precision, cl, device):
    """The bare loop over the estimator's network (``cfg``'s pooled CP-ResNet),
    its weights drawn after ``torch.manual_seed(0)``."""
    torch.manual_seed(0)
    return _BareLoop(
        create_model("cp_resnet", head="pooled", **cfg["model"]),
        precision,
        cl,
        device,
    )


def _estimator(cfg, precision, cl, device, **params):
    from sklearn_rfcnn import RFCNNClassifier

    model_kwargs = {k: v for k, v in cfg["model"].items() if k != "n_classes"}
    return RFCNNClassifier(
        **model_kwargs,
        batch_size=cfg["batch"],
        precision=precision,
        # per-phase layouts come only from "auto"
        channels_last="auto" if isinstance(cl, (list, tuple)) else cl,
        device=device,
        verbose=0,
        random_state=0,
        **params,
    )


def _bare_between_epochs(bare_epoch, device):
    """A skorch callback that times one bare epoch after each fit epoch.

    It runs after skorch's ``EpochTimer`` has closed the epoch and before the
    next one opens, so the fit's ``dur`` excludes it: fit epochs and bare
    epochs alternate, each pair back to back.
    """
    from skorch.callbacks import Callback

    class BareBetweenEpochs(Callback):
        def initialize(self):
            self.seconds_ = []
            return self

        def on_epoch_end(self, net, **kwargs):
            _sync(device)
            t0 = time.perf_counter()
            bare_epoch()
            _sync(device)
            self.seconds_.append(time.perf_counter() - t0)

    return BareBetweenEpochs()


def bench_estimator(
    n_clips, epochs, bare_iters, modes, compile_=False, device="cpu", config="small"
):
    """``fit`` throughput (epochs after the first) against the bare loop.

    Two fits per mode: one profiled (where a fit's time goes), and one with
    a bare epoch after each of its epochs (:func:`_bare_between_epochs`):
    ``fit_x_bare`` is the median over the epochs after the first of
    bare-epoch time / fit-epoch time, each pair back to back.
    """
    from sklearn.base import clone

    cfg = MODEL_CONFIGS[config]
    batch = cfg["batch"]
    X, Y = _tagging_data(cfg, n_clips)
    batches = _host_batches(X, Y, batch, device)
    results = {}
    runs = [(mode, False) for mode in modes] + ([("auto", True)] if compile_ else [])
    for mode, compiled in runs:
        precision, cl = _mode(mode, device)
        label = mode + ("_compile" if compiled else "")
        bare = _estimators_bare_loop(cfg, precision, cl, device)
        clf = _estimator(
            cfg,
            precision,
            cl,
            device,
            max_epochs=epochs,
            net_params={"compile": True} if compiled else None,
        )

        def bare_epoch(bare=bare):
            bare.train(batches)

        _interleaved({"bare": bare_epoch}, warmup=1, iters=0, device=device)
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        profile.enable()
        clf.fit(X, Y)
        profile.disable()
        fit_s = time.perf_counter() - t0
        spy = _bare_between_epochs(bare_epoch, device)
        paired = clone(clf).set_params(callbacks=[("bare", spy)]).fit(X, Y)
        spy = dict(paired.net_.callbacks_)["bare"]
        durs = [float(d) for d in paired.history_[:, "dur"]]
        bare_times = spy.seconds_
        steady = slice(1, None) if len(durs) > 1 else slice(None)
        ratios = [b / f for f, b in zip(durs[steady], bare_times[steady])]
        fit_rate = n_clips / statistics.median(durs[steady])
        bare_rate = n_clips / statistics.median(bare_times[steady])
        results[label] = {
            "precision": precision,
            "channels_last": cl,
            "compile": compiled,
            "fit_clips_per_s": fit_rate,
            "fit_epoch_s": durs,
            "fit_total_s": fit_s,
            "bare_step_samples_per_s": bare_rate,
            "bare_step_samples_per_s_best": n_clips / min(bare_times[steady]),
            "bare_epoch_s": [round(t, 4) for t in bare_times],
            "fit_x_bare": statistics.median(ratios),
            "fit_x_bare_range": [min(ratios), max(ratios)],
            "fit_time_shares": _stage_shares(profile, fit_s),
            # on a GPU cProfile sees the host: kernels run asynchronously and
            # their time falls to whatever waits for them
            "fit_time_shares_of": "host time"
            if torch.device(device).type == "cuda"
            else "wall time",
        }
        del clf, paired, bare
    base = results.get("fp32", next(iter(results.values())))
    for rec in results.values():
        rec["fit_x_fp32"] = rec["fit_clips_per_s"] / base["fit_clips_per_s"]
    return {
        "config": cfg,
        "device": device,
        "n_clips": n_clips,
        "epochs": epochs,
        "modes": results,
    }


def bench_calls(config, mode, n_batches, iters, reference=None, device="cpu"):
    """``partial_fit`` and ``predict_proba`` on a few batches, per call.

    One process, interleaved round-robin: each iteration times the
    estimator's call, the bare loop over the same batches (same network,
    precision, layout), and the float32 baseline's loop (the authors'
    reference with ``reference``, else the stock-layer ``plain`` network).
    The first ``partial_fit`` (which builds the network) is a warm-up.
    """
    cfg = MODEL_CONFIGS[config]
    precision, cl = _mode(mode, device)
    n_clips = n_batches * cfg["batch"]
    X, Y = _tagging_data(cfg, n_clips, seed=1)
    batches = _host_batches(X, Y, cfg["batch"], device)
    bare = _estimators_bare_loop(cfg, precision, cl, device)
    base_model = (
        load_reference(reference, **cfg["model"])
        if reference
        else plain_cp_resnet(**cfg["model"])
    )
    base = _BareLoop(base_model, "32", False, device)
    clf = _estimator(cfg, precision, cl, device, max_epochs=100)
    clf.partial_fit(X, Y)  # builds the net; later calls train one epoch each
    train = _interleaved(
        {
            "estimator": lambda: clf.partial_fit(X, Y),
            "bare": lambda: bare.train(batches),
            "baseline_fp32": lambda: base.train(batches),
        },
        warmup=1,
        iters=iters,
        device=device,
    )
    infer = _interleaved(
        {
            "estimator": lambda: clf.predict_proba(X),
            "bare": lambda: bare.predict(batches),
            "baseline_fp32": lambda: base.predict(batches),
        },
        warmup=1,
        iters=iters,
        device=device,
    )
    out = {
        "config": cfg,
        "device": device,
        "mode": mode,
        "precision": precision,
        "channels_last": cl,
        "n_clips": n_clips,
        "baseline": "reference" if reference else "plain",
    }
    for call, times in (("partial_fit", train), ("predict_proba", infer)):
        rec = {name: _rates(t, n_clips) for name, t in times.items()}
        est = rec["estimator"]
        for other in ("bare", "baseline_fp32"):
            # median of the per-iteration ratios: each pair ran back to back
            ratios = [b / e for e, b in zip(times["estimator"], times[other])]
            rec[f"x_{other}_median"] = statistics.median(ratios)
            rec[f"x_{other}_range"] = [min(ratios), max(ratios)]
            rec[f"x_{other}_best"] = est["best"] / rec[other]["best"]
        out[call] = rec
    return out


def profile_calls(config="tiny", mode="auto", n_batches=2, calls=20, device="cpu"):
    """Where the time of small ``partial_fit`` / ``predict_proba`` calls goes.

    cProfile over ``calls`` calls on an input so small that the network's
    compute is a minor part: the per-call and per-batch costs of the
    estimator, by function (own time, the 15 largest).
    """
    cfg = MODEL_CONFIGS[config]
    precision, cl = _mode(mode, device)
    X, Y = _tagging_data(cfg, n_batches * cfg["batch"], seed=2)
    clf = _estimator(cfg, precision, cl, device, max_epochs=100)
    clf.partial_fit(X, Y)
    out = {"config": cfg, "mode": mode}
    for name, fn in (
        ("partial_fit", lambda: clf.partial_fit(X, Y)),
        ("predict_proba", lambda: clf.predict_proba(X)),
    ):
        fn()
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        profile.enable()
        for _ in range(calls):
            fn()
        profile.disable()
        per_call = (time.perf_counter() - t0) / calls
        stats = pstats.Stats(profile)
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:15]
        out[name] = {
            "ms_per_call": 1e3 * per_call,
            "top_own_time_ms_per_call": [
                [f"{Path(f).name}:{ln}({fn_name})", 1e3 * v[2] / calls]
                for (f, ln, fn_name), v in rows
            ],
        }
    return out


#: operator group -> substrings of the ``aten::`` names in it (first match wins).
OP_GROUPS = {
    "convolution backward": ("convolution_backward",),
    "convolution": ("conv",),
    "batch norm": ("batch_norm",),
    "ReLU": ("relu", "threshold_backward", "clamp_min"),
    "pooling": ("pool",),
    "add, copy, cast, fill": ("add", "copy", "fill", "zero"),
}


def op_shares(config="paper", mode="auto", steps=2, device="cpu"):
    """Shares of a training step's and an inference pass's time per operator group.

    ``torch.profiler`` over ``steps`` calls of the mode's training step
    (zero_grad + forward + loss + backward, no optimizer) and inference
    pass (:func:`_steps`, one warm-up call each); each ``aten::`` operator's
    self time (on CUDA its device time) goes to the first group of
    :data:`OP_GROUPS` its name matches, everything else (other operators,
    autograd's engine, Python) to "rest".  Also times the AdamW step of
    the network alone (median of 10, gradients set), in torch's default
    per-tensor loop and in its fused kernel (the estimators' choice).
    """
    from torch.profiler import ProfilerActivity, profile

    cfg = MODEL_CONFIGS[config]
    precision, cl = _mode(mode, device)
    torch.manual_seed(0)
    x = torch.randn(cfg["batch"], 1, *cfg["input"])
    y = (torch.rand(cfg["batch"], cfg["model"]["n_classes"]) < 0.1).float()
    model = create_model("cp_resnet", head="pooled", **cfg["model"])
    cuda = torch.device(device).type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    out = {"config": cfg, "mode": mode, "precision": precision, "channels_last": cl}
    steps_of_mode = _steps(model, x, y, precision, cl, device)
    steps_of_mode[0]()  # the training layout, and a warm-up
    out["adamw_step_ms"] = _adamw_step_ms(model, device)
    for kind, fn in zip(("train", "inference"), steps_of_mode):
        fn()
        _sync(device)
        with profile(activities=activities) as prof:
            for _ in range(steps):
                fn()
            _sync(device)
        groups = dict.fromkeys([*OP_GROUPS, "rest"], 0.0)
        for event in prof.key_averages():
            t = event.self_device_time_total if cuda else event.self_cpu_time_total
            groups[_op_group(event.key)] += t
        total = sum(groups.values())
        out[kind] = {
            "ms_per_call": total / 1e3 / steps,
            "shares": {g: t / total for g, t in groups.items()},
        }
    return out


def _op_group(name):
    """The :data:`OP_GROUPS` group of a profiler event, or "rest"."""
    if name.startswith("aten::"):
        for group, keys in OP_GROUPS.items():
            if any(k in name for k in keys):
                return group
    return "rest"


def _adamw_step_ms(model, device, repeats=10):
    """Median ms of an AdamW step over ``model``: torch's default, and fused."""
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    out = {}
    for name, kw in (("default", {}), ("fused", {"fused": True})):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-6, **kw)
        opt.step()  # state allocated
        times = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            opt.step()
            _sync(device)
            times.append(time.perf_counter() - t0)
        out[name] = 1e3 * statistics.median(times)
    return out


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def _peak_text(rec):
    frac = rec.get("peak_fraction")
    return "" if frac is None else f"{frac:>7.2f}"


def report(doc):
    res = doc["results"]
    lines = [format_machine(doc["machine"])]
    gpu = res.get("gpu")
    if gpu:
        lines.append(
            f"GPU {gpu['name']} ({gpu['memory_gib']:.1f} GiB), torch "
            f"{gpu['torch']}, CUDA {gpu['cuda']}, cuDNN {gpu['cudnn']}"
        )
    device = res.get("device", "cpu")
    lines.append(
        f"device {device}; auto picks: precision={res['auto'][0]}"
        f"{_layout_text(res['auto'][1]) or ', contiguous (NCHW) layout'}"
    )
    if res.get("unfinished"):
        lines.append("UNFINISHED run: only the sections below were completed")
    peaks = res.get("matmul_peak_tflops")
    if peaks:
        lines.append(
            "matmul peak measured in this run: "
            + ", ".join(f"{p} {v:.2f} TFLOP/s" for p, v in peaks.items())
        )
    for name, m in res.get("model", {}).items():
        cfg = m["config"]
        lines.append(
            f"\nmodel {name}: CPResNet{cfg['model']}, input 1x{cfg['input'][0]}"
            f"x{cfg['input'][1]}, batch {cfg['batch']}; ratios to {m['baseline']} "
            "float32 (best / median of interleaved iterations); 'peak': fraction "
            "of the matmul peak in the mode's precision"
        )
        lines.append(
            f"{'mode':<12}{'train/s':>10}{'x train':>16}{'peak':>7}"
            f"{'infer/s':>10}{'x infer':>16}{'peak':>7}"
        )
        for mode, r in m["modes"].items():
            tr, inf = r["train"], r["inference"]
            lines.append(
                f"{mode:<12}{tr['best']:>10.2f}"
                f"{tr['x_baseline_best']:>8.2f} /{tr['x_baseline_median']:>5.2f}"
                f"{_peak_text(tr)}{inf['best']:>10.2f}"
                f"{inf['x_baseline_best']:>8.2f} /{inf['x_baseline_median']:>5.2f}"
                f"{_peak_text(inf)}"
            )
    est = res.get("estimator")
    if est:
        cfg = est["config"]
        lines.append(
            f"\nestimator: RFCNNClassifier.fit, {est['n_clips']} clips, "
            f"{est['epochs']} epochs, width {cfg['model']['width']}, batch "
            f"{cfg['batch']}; bare = the hand-written loop over the same batches"
        )
        lines.append(
            f"{'mode':<14}{'fit clips/s':>12}{'bare/s':>9}{'fit/bare [range]':>21}"
            f"{'x fp32':>8}   time shares"
        )
        for mode, r in est["modes"].items():
            shares = ", ".join(
                f"{k.split(' (')[0]} {v:.0%}" for k, v in r["fit_time_shares"].items()
            )
            if r.get("fit_time_shares_of") == "host time":
                shares = f"(host time) {shares}"
            spread = r.get("fit_x_bare_range")
            spread = f" [{spread[0]:.2f}-{spread[1]:.2f}]" if spread else ""
            lines.append(
                f"{mode:<14}{r['fit_clips_per_s']:>12.1f}"
                f"{r['bare_step_samples_per_s']:>9.1f}{r['fit_x_bare']:>9.2f}"
                f"{spread} {r['fit_x_fp32']:>8.2f}   {shares}"
            )
    for key, c in res.get("calls", {}).items():
        cfg = c["config"]
        lines.append(
            f"\ncalls {key}: {c['n_clips']} clips (width {cfg['model']['width']}, "
            f"batch {cfg['batch']}), {c['precision']}"
            f"{_layout_text(c['channels_last'])}; estimator's "
            f"clips/s, x bare loop and x {c['baseline']} float32 (median of "
            "paired iterations [range])"
        )
        for call in ("partial_fit", "predict_proba"):
            r = c[call]
            lines.append(
                f"  {call:<14}{r['estimator']['median']:>9.1f}/s"
                f"  x bare {r['x_bare_median']:.2f} "
                f"[{r['x_bare_range'][0]:.2f}-{r['x_bare_range'][1]:.2f}]"
                f"  x {c['baseline']} fp32 {r['x_baseline_fp32_median']:.2f} "
                f"[{r['x_baseline_fp32_range'][0]:.2f}-"
                f"{r['x_baseline_fp32_range'][1]:.2f}]"
            )
    prof = res.get("profile")
    if prof:
        for call in ("partial_fit", "predict_proba"):
            top = ", ".join(
                f"{name} {ms:.2f}"
                for name, ms in prof[call]["top_own_time_ms_per_call"][:6]
            )
            lines.append(
                f"\nprofile {call} ({prof['config']['model']}, "
                f"{prof[call]['ms_per_call']:.1f} ms/call): {top} (ms/call)"
            )
    for key, o in res.get("ops", {}).items():
        for kind in ("train", "inference"):
            shares = ", ".join(
                f"{g} {v:.0%}" for g, v in o[kind]["shares"].items() if v >= 0.005
            )
            lines.append(
                f"\nops {key} {kind} ({o['precision']}"
                f"{_layout_text(o['channels_last'])}, "
                f"{o[kind]['ms_per_call']:.0f} ms a batch of "
                f"{o['config']['batch']}): {shares}"
            )
        step = o.get("adamw_step_ms")
        if step:
            lines.append(
                f"ops {key}: AdamW step {step['default']:.2f} ms (torch's default), "
                f"{step['fused']:.2f} ms fused"
            )
    for section in ("frontend", "onnx"):
        if section in res:
            summary = res[section].get("summary")
            lines.append(
                f"\n{section}: {json.dumps(summary) if summary else 'see JSON'}"
            )
    return "\n".join(lines)


def gpu_info():
    """Name, memory and software versions of the current CUDA device."""
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "memory_gib": props.total_memory / 2**30,
        "multiprocessors": props.multi_processor_count,
        "capability": f"{props.major}.{props.minor}",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "tf32_convolutions": torch.backends.cudnn.allow_tf32,
        "bf16_supported": torch.cuda.is_bf16_supported(),
    }


SECTIONS = [
    "peak",
    "model",
    "estimator",
    "calls",
    "profile",
    "ops",
    "frontend",
    "onnx",
]


def _progress(section):
    print(f"[{time.strftime('%H:%M:%S')}] speed: {section} ...", flush=True)


def run(
    sections=None,
    device="cpu",
    quick=False,
    configs=None,
    modes=None,
    iters=None,
    reference=None,
    compile_=False,
    calls_iters=None,
    on_section=None,
):
    """Run the chosen sections on ``device`` and return their results (a dict).

    ``on_section(results)``, if given, is called after each section with
    the results so far (``main`` writes them, so that a run stopped by a
    time limit -- ``benchmarks/gpu_check.py`` runs this with ``--device
    cuda`` under one -- keeps the sections it finished).
    """
    sections = sections or SECTIONS
    done = on_section or (lambda results: None)
    cuda = torch.device(device).type == "cuda"
    native = cpu_native_bf16()
    if modes is None:
        # bf16 only where it is native; float16 on GPUs only
        modes = [
            m
            for m in (*OUR_MODES, "auto")
            if (cuda or not m.startswith("fp16"))
            and (cuda or native or not m.startswith("bf16"))
        ]
    results = {
        "device": device,
        "auto": list(auto_mode(device)),
        "native_bf16": list(native),
        "modes": modes,
        "threads": torch.get_num_threads(),
    }
    if cuda:
        results["gpu"] = gpu_info()
    peaks = None
    if "peak" in sections or "model" in sections:
        precisions = sorted({_mode(m, device)[0] for m in modes} | {"32"})
        peaks = matmul_peak(device, precisions, seconds=0.3 if quick else 1.0)
        results["matmul_peak_tflops"] = {p: v / 1e12 for p, v in peaks.items()}
        done(results)
    if "model" in sections:
        _progress("model")
        model_configs = configs or (["small"] if quick else ["paper", "small"])
        # the peak measured again (on a shared machine it varies): the best
        before = peaks
        results["model"] = {
            name: bench_model_config(
                name,
                modes,
                warmup=1,
                iters=iters or (2 if quick else 6),
                reference=reference,
                device=device,
                peaks=peaks,
                compile_=compile_,
            )
            for name in model_configs
        }
        again = matmul_peak(device, list(peaks), seconds=0.3 if quick else 1.0)
        peaks = {p: max(v, again[p]) for p, v in before.items()}
        results["matmul_peak_tflops"] = {p: v / 1e12 for p, v in peaks.items()}
        for m in results["model"].values():  # fractions of the best peak
            for rec in m["modes"].values():
                for kind in ("train", "inference"):
                    r = rec[kind]
                    if "peak_fraction" in r:
                        flops = m["gflop_per_sample"][kind] * 1e9
                        r["peak_fraction"] = flops * r["best"] / peaks[rec["precision"]]
        done(results)
    if "estimator" in sections:
        _progress("estimator")
        est_modes = [m for m in ("fp32", "auto") if m in modes or m == "fp32"]
        results["estimator"] = bench_estimator(
            n_clips=64 if quick else 128,  # 4 batches of 32 in a full run
            epochs=2 if quick else 4,
            bare_iters=2 if quick else 4,
            modes=est_modes,
            compile_=compile_,
            device=device,
        )
        done(results)
    if "calls" in sections:
        _progress("calls")
        names = configs or (["small"] if quick else ["paper", "small", "tiny"])
        results["calls"] = {
            f"{name}_auto": bench_calls(
                name,
                "auto",
                n_batches=2,
                iters=calls_iters or (2 if quick else 5),
                reference=reference,
                device=device,
            )
            for name in names
        }
        done(results)
    if "profile" in sections:
        _progress("profile")
        results["profile"] = profile_calls(
            "tiny", "auto", calls=5 if quick else 20, device=device
        )
        done(results)
    if "ops" in sections:
        _progress("ops")
        names = configs or (["small"] if quick else ["paper", "small"])
        results["ops"] = {
            f"{name}_auto": op_shares(
                name, "auto", steps=1 if quick else 2, device=device
            )
            for name in names
        }
        done(results)
    for section, module_name in (
        ("frontend", "bench_frontend"),
        ("onnx", "bench_onnx"),
    ):
        if section not in sections:
            continue
        try:
            module = importlib.import_module(module_name)
            run_section = module.run
        except (ImportError, AttributeError) as exc:
            print(f"{section}: skipped ({exc})")
            continue
        results[section] = run_section(quick=quick)
        done(results)
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, few iterations")
    p.add_argument("--sections", nargs="+", default=SECTIONS, choices=SECTIONS)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--configs", nargs="+", choices=list(MODEL_CONFIGS), default=None)
    p.add_argument(
        "--modes",
        nargs="+",
        choices=[*OUR_MODES, "auto"],
        default=None,
        help="our modes (default: all, bf16 only where the CPU has native bf16, "
        "float16 on GPUs only)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=None)
    p.add_argument("--calls-iters", type=int, default=None)
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
    info = machine_info()
    print(format_machine(info))
    slug = machine_slug(info) + ("_quick" if args.quick else "")
    if torch.device(args.device).type == "cuda":
        slug = re.sub(r"[^a-z0-9]+", "-", gpu_info()["name"].lower()).strip("-")
    out = Path(args.out) if args.out else RESULTS_DIR / f"speed_{slug}.json"
    earlier = {}
    if args.merge and out.exists():
        earlier = json.loads(out.read_text())["results"]

    def checkpoint(partial):
        # the sections so far, marked unfinished until the run's end
        write_results(
            f"speed_{slug}",
            {**earlier, **partial, "unfinished": True},
            started=started,
            path=out,
        )

    results = run(
        args.sections,
        device=args.device,
        quick=args.quick,
        configs=args.configs,
        modes=args.modes,
        iters=args.iters,
        reference=args.reference,
        compile_=args.compile,
        calls_iters=args.calls_iters,
        on_section=checkpoint,
    )
    results["load_average"] = os.getloadavg()
    results = {**earlier, **results}
    doc_path = write_results(f"speed_{slug}", results, started=started, path=out)
    print(report(json.loads(Path(doc_path).read_text())))
    print(f"wrote {doc_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
