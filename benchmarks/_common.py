"""Helpers every benchmark shares: the machine description and JSON output.

Every script under ``benchmarks/`` prints its figures together with
:func:`machine_info` (CPU model and vector extensions, torch version and
threads) and writes one JSON document with :func:`write_results`::

    {"benchmark": ..., "command": ..., "machine": {...}, "started": ...,
     "wall_s": ..., "results": ...}
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

__all__ = [
    "RESULTS_DIR",
    "bench_parser",
    "format_machine",
    "machine_info",
    "machine_slug",
    "read_jsonl",
    "run_benchmark",
    "sectioned_main",
    "time_rounds",
    "write_and_report",
    "write_results",
]

#: Where benchmark results are written (committed for published runs).
RESULTS_DIR = Path(__file__).resolve().parent / "results"

_EXTENSIONS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16")


def _cpu_model():
    try:
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        if line.strip().startswith("Model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info():
    """Describe this machine: CPU, vector extensions, torch, threads, GPU.

    Returns
    -------
    info : dict
        ``cpu``, ``cores``, ``vector_extensions`` (those of AVX2, AVX-512,
        AVX-512-BF16, AMX the CPU reports), ``torch``, ``torch_cpu_capability``,
        ``torch_threads``, ``onednn_max_cpu_isa``, ``omp_wait_policy`` (None:
        OpenMP's default), ``cuda`` (the device name or None), ``python``,
        ``platform``.
    """
    import torch

    from sklearn_rfcnn.utils._torch import proc_cpuinfo_flags

    flags = proc_cpuinfo_flags()
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # pragma: no cover - old torch
        capability = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "vector_extensions": [e for e in _EXTENSIONS if e in flags],
        "torch": torch.__version__,
        "torch_cpu_capability": capability,
        "torch_threads": torch.get_num_threads(),
        # a capped oneDNN (ONEDNN_MAX_CPU_ISA=AVX2) stands in for an older CPU
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        # None: OpenMP's default (spin, then sleep); PASSIVE slows the many
        # short parallel regions of small networks (benchmarks/README.md)
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def format_machine(info):
    """One line for the console: ``AMD EPYC (2 cores; avx2, avx512f) torch 2.13``."""
    ext = ", ".join(info["vector_extensions"]) or "no AVX2"
    gpu = f"; GPU {info['cuda']}" if info["cuda"] else ""
    if info.get("onednn_max_cpu_isa"):
        ext += f"; oneDNN capped at {info['onednn_max_cpu_isa']}"
    policy = info.get("omp_wait_policy")
    omp = f", OMP_WAIT_POLICY={policy}" if policy else ""
    return (
        f"{info['cpu']} ({info['cores']} cores; {ext}; torch capability "
        f"{info['torch_cpu_capability']}) torch {info['torch']}, "
        f"{info['torch_threads']} thread(s){omp}{gpu}"
    )


def write_results(name, results, *, started, path=None):
    """Write ``results`` with the machine description as JSON; return the path.

    Parameters
    ----------
    name : str
        Benchmark name; the default file is ``RESULTS_DIR / f"{name}.json"``.
    results : object
        JSON-serialisable figures.
    started : float
        ``time.time()`` when the run began (``wall_s`` is measured from it).
    path : str or path-like, default=None
        Output file instead of the default.
    """
    path = Path(path) if path is not None else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)),
        "wall_s": round(time.time() - started, 1),
        "results": results,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    os.replace(tmp, path)
    return path


def machine_slug(info):
    """A file-name part naming the CPU and its kind: ``amd-epyc-avx512bf16``.

    The kind is the best of AMX, AVX-512-BF16, AVX-512, AVX2; a oneDNN capped
    with ``ONEDNN_MAX_CPU_ISA`` is named by the cap (``amd-epyc-capped-avx2``).
    """
    cpu = re.sub(r"[^a-z0-9]+", "-", info["cpu"].lower()).strip("-")
    ext = info["vector_extensions"]
    kinds = [
        ("amx_bf16", "amx"),
        ("avx512_bf16", "avx512bf16"),
        ("avx512f", "avx512"),
        ("avx2", "avx2"),
    ]
    kind = next((name for flag, name in kinds if flag in ext), "generic")
    cap = info.get("onednn_max_cpu_isa")
    if cap:
        kind = "capped-" + re.sub(r"[^a-z0-9]+", "-", cap.lower()).strip("-")
    return f"{cpu}-{kind}"


def write_and_report(name, results, report, *, started, info, out=None):
    """Write ``results`` (:func:`write_results`), print ``report`` of them; the path.

    The file is ``out``, or ``RESULTS_DIR / f"{name}_{machine_slug(info)}.json"``;
    ``report`` turns the written document into text.
    """
    path = Path(out) if out else RESULTS_DIR / f"{name}_{machine_slug(info)}.json"
    path = write_results(name, results, started=started, path=path)
    print(report(json.loads(Path(path).read_text())))
    print(f"wrote {path}")
    return path


def bench_parser(doc, sections, *, reps, iters, quick_help):
    """The command line of a sectioned benchmark: the options they all take.

    ``--sections`` (``sections``, all by default), ``--threads`` (2),
    ``--reps`` and ``--iters`` (defaults ``reps`` and ``iters``),
    ``--quick`` and ``--out``; the script adds its own.
    """
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument(
        "--sections", nargs="+", choices=list(sections), default=list(sections)
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=reps)
    p.add_argument("--iters", type=int, default=iters)
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--out", default=None)
    return p


def sectioned_main(
    name, doc, sections, run, report, *, option, argv=None, quick_reps=2, **parser
):
    """The command line of a sectioned benchmark, run and reported.

    :func:`bench_parser` (``parser``: its ``reps``, ``iters`` and
    ``quick_help``) plus the script's own ``option``, a ``(flag,
    add_argument keywords)`` pair; then ``run(sections, quick=, reps=,
    iters=, <option>=)`` (``quick_reps`` rounds with ``--quick``) through
    :func:`run_benchmark`.
    """
    flag, kwargs = option
    p = bench_parser(doc, sections, **parser)
    p.add_argument(flag, nargs="+", **kwargs)
    args = p.parse_args(argv)
    dest = flag.lstrip("-").replace("-", "_")
    return run_benchmark(
        name,
        args,
        lambda: run(
            args.sections,
            quick=args.quick,
            reps=quick_reps if args.quick else args.reps,
            iters=args.iters,
            **{dest: getattr(args, dest)},
        ),
        report,
    )


def run_benchmark(name, args, run, report):
    """Run ``run()`` on ``args.threads`` torch threads, write and print its results.

    The machine is printed first; the JSON goes where :func:`write_and_report`
    puts it (``args.out`` if given).  Returns 0, the script's exit status.
    """
    import torch

    torch.set_num_threads(args.threads)
    started = time.time()
    info = machine_info()
    print(format_machine(info))
    results = run()
    write_and_report(name, results, report, started=started, info=info, out=args.out)
    return 0


def time_rounds(calls, rounds):
    """Time each of ``calls`` (name -> function) once per round, interleaved.

    Returns ``{name: [seconds, ...]}``, one wall-clock time per round.
    """
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def read_jsonl(path):
    """The records of a JSON-lines results file (``[]`` when it is missing)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
