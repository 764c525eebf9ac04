"""CPU throughput of CP-ResNet: forward and training step, fp32 / channels_last / bf16.

Measures samples per second for a forward pass (eval, inference mode) and a
training step (train mode, forward + BCE-with-logits + backward, as in the
reference measurement of method notes §8) for the paper configuration
(rho = 5 and 7, width 128, 256 x 431 input, batch 16) and a small one (width
32, 128 x 130), in four execution modes: float32, channels_last, bf16
autocast, channels_last + bf16, and ``plain``: a deliberately straightforward
float32 implementation of the same architecture from the method notes (stock
``nn.Conv2d``/``nn.BatchNorm2d``/``nn.MaxPool2d`` in an ``nn.Sequential``, no
tiny-input handling), the same-machine stand-in for the authors' reference
model, whose own timing (method notes §8) came from a different CPU.  FLOPs
per sample come from ``torch.utils.flop_counter.FlopCounterMode`` (run on the
meta device, so counting costs nothing); achieved
GFLOP/s = FLOPs per sample x samples/s.

Usage::

    python benchmarks/bench_model.py            # full: 2 warm-up + 5 timed iterations
    python benchmarks/bench_model.py --quick    # 1 warm-up + 2 timed iterations
    python benchmarks/bench_model.py --threads 2 --modes fp32 channels_last
    python benchmarks/bench_model.py --quick --configs small_rho5 --merge

bf16 autocast on a CPU without native bf16 instructions (AVX-512-BF16/AMX)
is emulated and several times slower than float32; it is there to show that
the models run under autocast and to measure machines that have them.

The machine (``_common.machine_info``) is printed with the figures; results
go to ``benchmarks/results/bench_model.json`` (``_common.write_results``;
with ``--merge``, earlier configs/modes are read from its ``results``).  The
machine load average is recorded: on a shared machine, the *best* iteration is the most
representative of an idle machine (the median is reported too), and the
"cpu" columns estimate the uncontended rate from the process CPU time,
``batch / (CPU seconds / threads)``.
"""

import argparse
import contextlib
import json
import os
import statistics
import time
from pathlib import Path

# On a shared machine, OpenMP threads that spin while waiting for a peer that
# another process has descheduled make 2-thread runs up to ~20x slower than
# 1 thread (measured here); passive waiting avoids that.  Must be set before
# torch loads its OpenMP runtime; an explicit setting in the environment wins.
# Only when run as a script: a script that imports this one (speed.py)
# keeps its own policy, and records it.
if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F
from _common import RESULTS_DIR, format_machine, machine_info, write_results
from torch.utils.flop_counter import FlopCounterMode

from sklearn_rfcnn.models import create_model
from sklearn_rfcnn.receptive_field import kernel_schedule, pool_positions

CONFIGS = {
    "paper_rho5": {
        "model": {"rho": 5, "width": 128, "n_classes": 56},
        "input": (256, 431),
        "batch": 16,
    },
    "paper_rho7": {
        "model": {"rho": 7, "width": 128, "n_classes": 56},
        "input": (256, 431),
        "batch": 16,
    },
    "small_rho5": {
        "model": {"rho": 5, "width": 32, "n_classes": 20},
        "input": (128, 130),
        "batch": 16,
    },
}
MODES = ("fp32", "plain", "channels_last", "bf16", "channels_last_bf16")

#: Authors' reference code, method notes §8 (2 threads, batch 16, rho = 5).
REFERENCE_TRAIN_SAMPLES_PER_S = {"median": 3.09, "best": 3.47}
REFERENCE_FORWARD_SAMPLES_PER_S = {"median": 9.8, "best": 10.1}


def count_flops(model_kwargs, shape):
    """Forward and forward+backward FLOPs for one sample (meta device)."""
    with torch.device("meta"):
        model = create_model("cp_resnet", **model_kwargs)
        x = torch.empty(1, 1, *shape)
    with FlopCounterMode(display=False) as counter:
        model(x)
    fwd = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return fwd, counter.get_total_flops()


def _time(fn, warmup, iters):
    """Wall-clock and process CPU seconds of each timed call."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(iters):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def plain_cp_resnet(rho=5, width=128, n_classes=10, in_channels=1, depth=26):
    """CP-ResNet written as plainly as possible, for a same-machine comparison.

    Stock torch layers only, following the method notes §1.1-§1.2: 5x5/2 stem,
    post-activation basic blocks with padding k // 3, 2x2 max-pools after
    blocks 1, 2 and 4 of stage 1, 1x1 classifier + BN + global average pool.
    """
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c_in, c_out, k1, k2):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, k1, padding=k1 // 3, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, k2, padding=k2 // 3, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.shortcut = nn.Sequential()
            if c_in != c_out:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
                )

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    layers = [
        nn.Conv2d(in_channels, width, 5, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
    ]
    schedule = kernel_schedule(rho, depth)
    per_stage = len(schedule) // 3
    pools = pool_positions(depth)
    c_in = width
    for i, (k1, k2) in enumerate(schedule):
        c_out = width * 2 ** (i // per_stage)
        layers.append(Block(c_in, c_out, k1, k2))
        c_in = c_out
        if i // per_stage == 0:  # pools sit in stage 1 only
            layers += [nn.MaxPool2d(2, 2) for _ in range(pools.count(i + 1))]
    layers += [
        nn.Conv2d(c_in, n_classes, 1, bias=False),
        nn.BatchNorm2d(n_classes),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ]
    return nn.Sequential(*layers)


def bench_one(cfg, mode, warmup, iters, seed=0):
    """Time forward and training step of one configuration in one mode."""
    torch.manual_seed(seed)
    if mode == "plain":
        model = plain_cp_resnet(**cfg["model"])
        ours = create_model("cp_resnet", **cfg["model"])
        n_plain = sum(p.numel() for p in model.parameters())
        n_ours = sum(p.numel() for p in ours.parameters())
        assert n_plain == n_ours, (n_plain, n_ours)
    else:
        model = create_model("cp_resnet", **cfg["model"])
    x = torch.randn(cfg["batch"], 1, *cfg["input"])
    y = (torch.rand(cfg["batch"], cfg["model"]["n_classes"]) < 0.1).float()
    if mode.startswith("channels_last"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def ctx():
        if mode.endswith("bf16"):
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward():
        with torch.inference_mode(), ctx():
            model(x)

    def train_step():
        model.zero_grad(set_to_none=True)
        with ctx():
            loss = F.binary_cross_entropy_with_logits(model(x).float(), y)
        loss.backward()

    model.eval()
    fwd, fwd_cpu = _time(forward, warmup, iters)
    model.train()
    trn, trn_cpu = _time(train_step, warmup, iters)
    b = cfg["batch"]
    threads = torch.get_num_threads()
    return {
        "forward_s": fwd,
        "train_s": trn,
        "forward_cpu_s": fwd_cpu,
        "train_cpu_s": trn_cpu,
        # CPU-time estimate of the uncontended rate: batch / (CPU s / threads).
        # Robust to other processes sharing the cores (spin-waits count against).
        "forward_samples_per_s_cpu_time": b * threads / min(fwd_cpu),
        "train_samples_per_s_cpu_time": b * threads / min(trn_cpu),
        "forward_samples_per_s_median": b / statistics.median(fwd),
        "forward_samples_per_s_best": b / min(fwd),
        "train_samples_per_s_median": b / statistics.median(trn),
        "train_samples_per_s_best": b / min(trn),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 warm-up + 2 iterations")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument(
        "--output",
        type=Path,
        default=RESULTS_DIR / "bench_model.json",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep configs/modes of an existing output file that this run does not "
        "measure (e.g. to time the slow bf16 modes in a separate run)",
    )
    args = p.parse_args(argv)
    started = time.time()
    torch.set_num_threads(args.threads)
    warmup, iters = (1, 2) if args.quick else (2, 5)

    results = {
        "torch": torch.__version__,
        "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "warmup": warmup,
        "iterations": iters,
        "load_average_before": os.getloadavg(),
        "reference_train_samples_per_s": REFERENCE_TRAIN_SAMPLES_PER_S,
        "reference_forward_samples_per_s": REFERENCE_FORWARD_SAMPLES_PER_S,
        "configs": {},
    }
    header = (
        f"{'config':<12} {'mode':<19} {'GFLOP/s fwd':>11} {'fwd/s med':>9} "
        f"{'fwd/s best':>10} {'x fp32':>6} {'train/s med':>11} {'train/s best':>12} "
        f"{'x fp32':>6} {'GFLOP/s trn':>11} {'fwd/s cpu':>9} {'train/s cpu':>11}"
    )
    print(format_machine(machine_info()))
    print(f"torch {torch.__version__}, {args.threads} threads, "
          f"{warmup} warm-up + {iters} timed iterations, "
          f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for name in args.configs:
        cfg = CONFIGS[name]
        fwd_flops, trn_flops = count_flops(cfg["model"], cfg["input"])
        entry = {
            **cfg,
            "flops_forward_per_sample": fwd_flops,
            "flops_train_per_sample": trn_flops,
            "modes": {},
        }
        base = None
        for mode in args.modes:
            r = bench_one(cfg, mode, warmup, iters)
            r["gflops_forward_best"] = fwd_flops * r["forward_samples_per_s_best"] / 1e9
            r["gflops_train_best"] = trn_flops * r["train_samples_per_s_best"] / 1e9
            r["load_average"] = os.getloadavg()
            r["threads"] = args.threads
            r["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
            if base is None:
                base = r
            r["forward_speedup_vs_first"] = (
                r["forward_samples_per_s_best"] / base["forward_samples_per_s_best"]
            )
            r["train_speedup_vs_first"] = (
                r["train_samples_per_s_best"] / base["train_samples_per_s_best"]
            )
            entry["modes"][mode] = r
            print(
                f"{name:<12} {mode:<19} {r['gflops_forward_best']:>11.1f} "
                f"{r['forward_samples_per_s_median']:>9.2f} "
                f"{r['forward_samples_per_s_best']:>10.2f} "
                f"{r['forward_speedup_vs_first']:>6.2f} "
                f"{r['train_samples_per_s_median']:>11.2f} "
                f"{r['train_samples_per_s_best']:>12.2f} "
                f"{r['train_speedup_vs_first']:>6.2f} "
                f"{r['gflops_train_best']:>11.1f} "
                f"{r['forward_samples_per_s_cpu_time']:>9.2f} "
                f"{r['train_samples_per_s_cpu_time']:>11.2f}",
                flush=True,
            )
        print(
            f"{'':<12} FLOPs/sample: forward {fwd_flops / 1e9:.2f} G, "
            f"forward+backward {trn_flops / 1e9:.2f} G"
        )
        results["configs"][name] = entry
    results["load_average_after"] = os.getloadavg()
    if "paper_rho5" in results["configs"] and "fp32" in args.modes:
        r = results["configs"]["paper_rho5"]["modes"]["fp32"]
        print(
            f"\npaper rho=5, fp32 training step: {r['train_samples_per_s_median']:.2f} "
            f"(median) / {r['train_samples_per_s_best']:.2f} (best) samples/s; "
            f"authors' reference: {REFERENCE_TRAIN_SAMPLES_PER_S['median']} / "
            f"{REFERENCE_TRAIN_SAMPLES_PER_S['best']}; CPU-time estimate "
            f"(uncontended): {r['train_samples_per_s_cpu_time']:.2f} samples/s"
        )
    for name, entry in results["configs"].items():
        modes = entry["modes"]
        if "plain" in modes and "fp32" in modes:
            ratio_fwd = (
                modes["fp32"]["forward_samples_per_s_best"]
                / modes["plain"]["forward_samples_per_s_best"]
            )
            ratio_trn = (
                modes["fp32"]["train_samples_per_s_best"]
                / modes["plain"]["train_samples_per_s_best"]
            )
            entry["ours_vs_plain"] = {"forward": ratio_fwd, "train": ratio_trn}
            print(
                f"{name}: sklearn_rfcnn CPResNet / plain implementation on this "
                f"machine: forward x{ratio_fwd:.2f}, training step x{ratio_trn:.2f}"
            )
    if args.merge and args.output.exists():
        previous = json.loads(args.output.read_text())
        # the shared schema nests the figures under "results"; older files
        # (before benchmarks/_common.py) held them at the top level
        previous = previous.get("results", previous)
        for name, entry in previous.get("configs", {}).items():
            if name not in results["configs"]:
                results["configs"][name] = entry
            else:
                for mode, r in entry.get("modes", {}).items():
                    results["configs"][name]["modes"].setdefault(mode, r)
    write_results("bench_model", results, started=started, path=args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
