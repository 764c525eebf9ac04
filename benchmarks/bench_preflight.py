"""How soon ``rfcnn fit`` refuses a wrong parameter, against a missing folder.

Issue 26's acceptance: ``rfcnn fit DIR -o MODEL --rho 40`` on a folder of 200
clips exits with status 2, before any "training" line, within 1.5 s of the
time the same command takes to refuse a missing INPUT folder (both pay the
same imports; the parameter check must add no data work).  Each run is a
fresh ``rfcnn`` process timed from launch to exit; the two commands alternate
so that load on a shared machine hits both alike.  Prints the figures
(median, min and max of each, and of the per-pair difference) and writes
``benchmarks/results/bench_preflight.json``.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_preflight.py [--quick]``
(``--quick``: 20 clips and 2 pairs instead of 200 clips and 5 pairs).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import soundfile as sf
from _common import format_machine, machine_info, write_results


def _write_clips(root, n_clips, sr=22050, seconds=3.0):
    """``root/<class>/*.wav``: ``n_clips`` tones of two classes."""
    t = np.arange(int(sr * seconds)) / sr
    for i in range(n_clips):
        cls, base = ("low", 220.0) if i % 2 else ("high", 1800.0)
        (root / cls).mkdir(parents=True, exist_ok=True)
        wave = 0.5 * np.sin(2 * np.pi * (base + 3 * i) * t)
        sf.write(str(root / cls / f"{cls}{i}.wav"), wave, sr)


def _run(args):
    """``(seconds, returncode, stdout, stderr)`` of one ``rfcnn`` process."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "sklearn_rfcnn", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - start, proc.returncode, proc.stdout, proc.stderr


def _summary(values):
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
        "runs": len(values),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="JSON path")
    opts = parser.parse_args(argv)
    n_clips, pairs = (20, 2) if opts.quick else (200, 5)
    started = time.time()
    info = machine_info()
    print(format_machine(info))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _write_clips(tmp / "clips", n_clips)
        bad_rho = ["fit", str(tmp / "clips"), "-o", str(tmp / "m1"), "--rho", "40"]
        missing = ["fit", str(tmp / "no-such-folder"), "-o", str(tmp / "m2")]
        times = {"rho_40": [], "missing_folder": []}
        messages = {}
        for _ in range(pairs):
            for name, args in (("rho_40", bad_rho), ("missing_folder", missing)):
                seconds, code, out, err = _run(args)
                if code != 2 or "training" in out:
                    raise SystemExit(
                        f"{name}: exit {code}, stdout {out!r}, stderr {err!r}"
                    )
                times[name].append(seconds)
                messages[name] = err.strip()
    diffs = [a - b for a, b in zip(times["rho_40"], times["missing_folder"])]
    results = {
        "n_clips": n_clips,
        "rho_40": _summary(times["rho_40"]),
        "missing_folder": _summary(times["missing_folder"]),
        "difference": _summary(diffs),
        "messages": messages,
    }
    for name in ("rho_40", "missing_folder", "difference"):
        r = results[name]
        print(
            f"{name:15s} median {r['median_s']:.2f} s (min {r['min_s']:.2f}, "
            f"max {r['max_s']:.2f}; {r['runs']} runs)"
        )
    path = write_results("bench_preflight", results, started=started, path=opts.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
