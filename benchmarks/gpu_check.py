"""One prepared GPU check: the ``gpu`` tests and the CUDA speed figures, one JSON.

On a machine with a CUDA GPU, ``make gpu-check`` (this script) runs, within
about six minutes:

1. the tests marked ``gpu`` (``pytest -m gpu`` over the test files that have
   them: fit / predict / save / load in each precision, channels-last,
   ``device="auto"``, a GPU-trained model loaded on a CPU, the embedder,
   windows and ``predict_proba_frames``, ONNX export, the HEAR API, an
   Optuna search, Accelerate on one process, the torch mel front end);
2. the speed part of ``speed.py`` on CUDA (``speed.run(device="cuda")``): the
   GPU's matmul peak per precision, the CP-ResNet training step and
   inference per mode against the float32 baseline with the fraction of
   that peak reached, ``fit`` against a bare training loop, and
   ``partial_fit`` / ``predict_proba`` on two batches against the bare loop
   and the float32 baseline (the authors' model with ``--reference DIR``);

and writes both, with the GPU's name and memory and the torch / CUDA /
cuDNN versions, to one JSON file (``benchmarks/results/gpu_check.json``).
Each part runs in its own process with a time limit, so a failure in one is
recorded and the other still runs.  The exit status is 0 when every ``gpu``
test passed and the speed part finished.

Without CUDA it prints one line saying so and exits 0 (CI stays green).

GPU machines without a package registry: ``make gpu-wheels`` (here, where
pip reaches an index) downloads the wheels of what such a machine lacks --
skorch, librosa, soundfile, optuna, optuna-integration and their own
requirements, for Python 3.12 on manylinux x86-64, at the versions installed
here -- into ``.gpu-wheels/`` (ignored by git); this script installs from
there (``pip install --no-index --find-links``) when an import is missing.
``--verify-wheels`` checks such a folder with a dry-run install into a
throwaway environment that has only what the GPU machine is assumed to have.

Usage::

    make gpu-wheels                           # where pip reaches an index
    make gpu-check                            # on the GPU machine
    python benchmarks/gpu_check.py --reference ~/src/cpjku_dcase19 --out gpu.json
    python benchmarks/gpu_check.py --download-wheels .gpu-wheels
    python benchmarks/gpu_check.py --verify-wheels .gpu-wheels
    python benchmarks/gpu_check.py --rehearse .gpu-wheels   # ~3 GB, ~5 min

``--rehearse`` is the dress rehearsal: a throwaway Python 3.12 environment
holding what a GPU machine holds, at its versions where they are known
(:data:`GPU_MACHINE_PINS`: its torch 2.11, numpy 2.5, onnxruntime ...), runs
``--dry-run-on-cpu`` from there, so that the check installs the missing
distributions from the wheel folder without an index, as it will on the
machine, and runs the CPU twins of the ``gpu`` tests and the speed part with
that machine's libraries.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_WHEELS = ROOT / ".gpu-wheels"

#: import name -> distribution, for everything the ``gpu`` tests and the
#: speed part import (the package's own requirements, the tune extra, the
#: test runner).  What is missing is installed from the wheel folder.
NEEDED = {
    "numpy": "numpy",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "joblib": "joblib",
    "tqdm": "tqdm",
    "skorch": "skorch",
    "librosa": "librosa",
    "soundfile": "soundfile",
    "optuna": "optuna",
    "optuna_integration": "optuna-integration",
    "onnx": "onnx",
    "onnxscript": "onnxscript",
    "onnxruntime": "onnxruntime",
    "accelerate": "accelerate",
    "pytest": "pytest",
    "pytest_timeout": "pytest-timeout",
}

#: The distributions our GPU machines lack (their image has PyTorch, the
#: scientific stack, ONNX, Accelerate and pytest): ``make gpu-wheels``
#: downloads these with their requirements.
GPU_MACHINE_LACKS = ("skorch", "librosa", "soundfile", "optuna", "optuna-integration")

#: Distributions such a machine has (read off its package list), left out of
#: the folder to keep it small (a device run carries at most 64 MiB).
GPU_MACHINE_HAS = frozenset(
    """accelerate attrs certifi charset-normalizer click cloudpickle colorama
    filelock fsspec idna jinja2 joblib lazy-loader llvmlite markupsafe
    matplotlib msgpack networkx numba numpy onnx onnxruntime onnxscript
    packaging pandas pillow protobuf psutil pytest pytest-timeout
    pyyaml requests scikit-learn scipy setuptools six sympy tabulate
    threadpoolctl torch tqdm typing-extensions urllib3 wheel""".split()
)

#: Versions read off a GPU machine's package list (the device tool's
#: ``KINDS.md``, 2026-11) of what the check imports; ``--rehearse`` builds
#: its environment at these.  torch 2.11's PyPI wheel is a CUDA build
#: (about 3 GB with its CUDA libraries); it runs on a CPU.
GPU_MACHINE_PINS = {
    "torch": "2.11.0",
    "numpy": "2.5.2",
    "onnx": "1.23.1",
    "onnxscript": "0.7.2",
    "onnxruntime": "1.30.0",
    "accelerate": "1.15.0",
}

#: The file in the wheel folder naming what it leaves to the machine.
ASSUMED_FILE = "gpu-machine-has.txt"

#: pip's platform tags of Python 3.12 on manylinux x86-64 (pip matches the
#: glibc version of a tag exactly, so the usual ones are listed).
PLATFORMS = (
    "manylinux2014_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_31_x86_64",
    "manylinux_2_34_x86_64",
)

#: Seconds for each part (6 minutes in all, the install included).
TEST_BUDGET_S = 200
SPEED_BUDGET_S = 130
#: The whole check's limit: the speed part gets what the tests left of it.
TOTAL_BUDGET_S = 360
#: pytest-timeout's limit for one test in the check (the project's is 900 s).
PER_TEST_TIMEOUT_S = 120


def _canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _target_flags():
    flags = ["--only-binary=:all:", "--python-version", "3.12", "--implementation"]
    flags.append("cp")
    for platform in PLATFORMS:
        flags += ["--platform", platform]
    return flags


def _pinned(names):
    """``name==version`` of each distribution as installed here (else the name)."""
    out = []
    for name in names:
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(name)
    return out


def download_wheels(folder, lacks=GPU_MACHINE_LACKS, has=GPU_MACHINE_HAS):
    """Fill ``folder`` with the wheels a GPU machine needs (Python 3.12).

    pip resolves ``lacks`` (pinned to the versions installed here) for
    Python 3.12 on manylinux x86-64 without downloading (``--dry-run
    --report``); every resolved distribution that the machine does not
    ``has`` is then downloaded without its dependencies.

    Returns
    -------
    wheels : list of str
        The file names in ``folder``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                *pip,
                "install",
                "--dry-run",
                "--quiet",
                "--ignore-installed",
                "--report",
                str(report),
                "--target",
                str(Path(tmp) / "target"),
                *_target_flags(),
                *_pinned(lacks),
            ],
            check=True,
        )
        resolved = json.loads(report.read_text())["install"]
    wanted = sorted(
        f"{r['metadata']['name']}=={r['metadata']['version']}"
        for r in resolved
        if _canon(r["metadata"]["name"]) not in has
    )
    # what the folder relies on the machine for (--verify-wheels installs it)
    assumed = sorted(
        _canon(r["metadata"]["name"])
        for r in resolved
        if _canon(r["metadata"]["name"]) in has
    )
    (folder / ASSUMED_FILE).write_text("\n".join(assumed) + "\n")
    print(f"downloading {len(wanted)} wheels into {folder}: {' '.join(wanted)}")
    subprocess.run(
        [
            *pip,
            "download",
            "--quiet",
            "--no-deps",
            "-d",
            str(folder),
            *_target_flags(),
            *wanted,
        ],
        check=True,
    )
    return sorted(p.name for p in folder.glob("*.whl"))


def _throwaway_venv(python, tmp, requirements):
    """A virtual environment of ``python`` in ``tmp`` holding ``requirements``
    (from the index); its Python's path."""
    subprocess.run([python, "-m", "venv", f"{tmp}/venv"], check=True)
    vpython = f"{tmp}/venv/bin/python"
    subprocess.run(
        [
            vpython,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "install",
            "--quiet",
            *requirements,
        ],
        check=True,
    )
    return vpython


def verify_wheels(folder, python="python3.12", lacks=GPU_MACHINE_LACKS):
    """Dry-run install of ``lacks`` from ``folder`` alone, as on a GPU machine.

    A throwaway virtual environment of ``python`` (3.12) gets the
    distributions that :func:`download_wheels` left to the machine (listed
    in the folder's ``gpu-machine-has.txt``; from the ordinary index); then
    ``pip install --dry-run --no-index --find-links folder`` must resolve
    every one of ``lacks`` -- a requirement that is neither in the
    environment nor in the folder fails it.
    """
    folder = Path(folder).resolve()
    present = (folder / ASSUMED_FILE).read_text().split()
    with tempfile.TemporaryDirectory() as tmp:
        vpython = _throwaway_venv(python, tmp, present)
        result = subprocess.run(
            [
                vpython,
                "-m",
                "pip",
                "--disable-pip-version-check",
                "install",
                "--dry-run",
                "--no-index",
                "--find-links",
                str(folder),
                *lacks,
            ],
            capture_output=True,
            text=True,
        )
    print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
    return result.returncode == 0


def rehearsal_requirements(folder, pins=GPU_MACHINE_PINS, lacks=GPU_MACHINE_LACKS):
    """What ``--rehearse`` installs: what a GPU machine has, nothing it lacks.

    The distributions that :data:`NEEDED` imports and the machine has, with
    those that the wheel folder leaves to the machine
    (``gpu-machine-has.txt``), pinned to ``pins`` where given.  The
    distributions in ``lacks`` are left out: the check under rehearsal
    installs them from the folder.

    Returns
    -------
    requirements : list of str
        ``name`` or ``name==version``, sorted.
    """
    lacking = {_canon(name) for name in lacks}
    names = {_canon(d) for d in NEEDED.values()} | {_canon(d) for d in pins}
    assumed = Path(folder) / ASSUMED_FILE
    if assumed.exists():
        names |= {_canon(d) for d in assumed.read_text().split()}
    names -= lacking
    pinned = {_canon(name): version for name, version in pins.items()}
    return sorted(f"{n}=={pinned[n]}" if n in pinned else n for n in names)


def _python_version(python):
    """``"major.minor"`` of the interpreter ``python``, or None if it does not run."""
    try:
        proc = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def rehearse(folder, python="python3.12", out=None, pins=GPU_MACHINE_PINS):
    """The CPU dry run in a throwaway environment shaped like a GPU machine.

    A virtual environment of ``python`` gets :func:`rehearsal_requirements`
    from the index; its Python then runs this script with
    ``--dry-run-on-cpu --wheels folder``, which finds skorch, librosa,
    soundfile and optuna missing and installs them from ``folder`` alone
    (``pip install --no-index``), as on the machine, and runs the CPU twins
    of the ``gpu`` tests and the speed part against that machine's library
    versions.

    Raises :class:`InstallError` when ``folder`` holds no wheels or
    ``python`` is not a working Python 3.12.

    Returns
    -------
    returncode : int
        The dry run's exit status (0: every step worked).
    """
    folder = Path(folder).resolve()
    if not any(folder.glob("*.whl")):
        raise InstallError(
            f"gpu-check: no wheels in {folder}; run `make gpu-wheels` first."
        )
    version = _python_version(python)
    if version != "3.12":
        raise InstallError(
            f"gpu-check rehearsal: needs a Python 3.12 (the GPU machines' "
            f"version); `{python}` "
            + ("did not run" if version is None else f"is Python {version}")
            + ": name one with --python (make gpu-rehearse PYTHON312=...)."
        )
    out = Path(out or HERE / "results" / "gpu_check_rehearsal.json").resolve()
    requirements = rehearsal_requirements(folder, pins)
    print(f"gpu-check rehearsal: installing {' '.join(requirements)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        vpython = _throwaway_venv(python, tmp, requirements)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        return subprocess.run(
            [
                vpython,
                str(Path(__file__).resolve()),
                "--dry-run-on-cpu",
                "--wheels",
                str(folder),
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env=env,
        ).returncode


def missing_distributions():
    """The distributions of :data:`NEEDED` whose import name is not found."""
    return [
        dist for mod, dist in NEEDED.items() if importlib.util.find_spec(mod) is None
    ]


class InstallError(RuntimeError):
    """The missing distributions could not be installed from the wheel folder."""


def install_missing(missing, wheels):
    """``pip install --no-index --find-links wheels`` the ``missing`` ones.

    Raises :class:`InstallError` (naming ``make gpu-wheels``, or with the
    tail of pip's output) when the folder has no wheels or pip fails.
    """
    wheels = Path(wheels)
    if not any(wheels.glob("*.whl")):
        raise InstallError(
            f"gpu-check: {', '.join(missing)} not installed and no wheels in "
            f"{wheels}; run `make gpu-wheels` where pip reaches an index and "
            "bring the folder along."
        )
    print(f"gpu-check: installing {', '.join(missing)} from {wheels}", flush=True)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            str(wheels),
            *missing,
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise InstallError(
            f"gpu-check: pip could not install {', '.join(missing)} from {wheels} "
            f"(exit {proc.returncode}); rebuild the folder with `make gpu-wheels`. "
            f"pip said:\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    importlib.invalidate_caches()


def record_install_failure(error, *, device, missing, started, out=None):
    """Write the check's JSON for a run whose install failed; return its path.

    The one file a lent GPU machine sends back then says why nothing ran:
    ``install_error`` (pip's output), the distributions that were missing
    and the GPU (read from torch alone: the library cannot be imported).
    """
    if str(HERE) not in sys.path:  # called before main() put it there
        sys.path.insert(0, str(HERE))
    from _common import write_results

    gpu = None
    if device == "cuda":
        import torch

        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "memory_gib": props.total_memory / 2**30}
    results = {
        "device": device,
        "gpu": gpu,
        "missing": list(missing),
        "installed_from_wheels": [],
        "install_error": str(error),
    }
    return write_results("gpu_check", results, started=started, path=out)


def gpu_test_files():
    """The test files that hold ``gpu``-marked tests."""
    return sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").glob("test_*.py")
        if "mark.gpu" in p.read_text(encoding="utf-8")
    )


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _run_from_root(command, budget_s):
    """Run ``command`` in the repository root for at most ``budget_s`` seconds.

    Returns ``(returncode, stdout + stderr)``; on a timeout ``(None, what it
    had printed)``.
    """
    try:
        proc = subprocess.run(
            command,
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=budget_s,
        )
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout
        return None, partial.decode() if isinstance(partial, bytes) else partial or ""
    return proc.returncode, proc.stdout + proc.stderr


def run_gpu_tests(budget_s=TEST_BUDGET_S, files=None, marker="gpu"):
    """``pytest -m gpu``: counts and one record per test (from JUnit XML).

    ``marker="not gpu"`` over ``tests/test_gpu.py`` runs the CPU twins of
    the same tests (``--dry-run-on-cpu``).
    """
    files = files or gpu_test_files()
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "gpu.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            *files,
            "-m",
            marker,
            "-p",
            "no:cacheprovider",
            "-q",
            "-rfEs",
            "--continue-on-collection-errors",
            # one hung test fails alone instead of taking the report with it
            "-o",
            f"timeout={PER_TEST_TIMEOUT_S}",
            f"--junitxml={xml}",
        ]
        t0 = time.perf_counter()
        rc, out = _run_from_root(command, budget_s)
        if rc is None:
            out = f"timed out after {budget_s} s\n" + out
        wall = time.perf_counter() - t0
        cases = _junit_cases(xml) if xml.exists() else []
    counts = {}
    for case in cases:
        counts[case["outcome"]] = counts.get(case["outcome"], 0) + 1
    return {
        "command": " ".join(command[1:]),
        "returncode": rc,
        "wall_s": round(wall, 1),
        "counts": counts,
        "tests": cases,
        "output_tail": out[-4000:],
    }


def _junit_cases(path):
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error"}.get(tag, tag)
                message = (node.get("message") or "")[:500]
                break
        cases.append(
            {
                "test": f"{case.get('classname')}::{case.get('name')}",
                "outcome": outcome,
                "seconds": float(case.get("time") or 0.0),
                "message": message,
            }
        )
    return cases


def run_speed(
    out, budget_s=SPEED_BUDGET_S, reference=None, threads=None, device="cuda"
):
    """``speed.py --device cuda`` in its own process; its JSON document."""
    command = [
        sys.executable,
        str(HERE / "speed.py"),
        "--device",
        device,
        "--sections",
        "peak",
        "model",
        "estimator",
        "calls",
        "--iters",
        "4",
        "--calls-iters",
        "4",
        "--out",
        str(out),
    ]
    if device == "cpu":  # the dry run: the same sections at the smallest sizes
        command += ["--quick", "--configs", "tiny"]
    if threads:
        command += ["--threads", str(threads)]
    if reference:
        command += ["--reference", str(reference)]
    Path(out).unlink(missing_ok=True)  # what comes back is this run's
    t0 = time.perf_counter()
    rc, printed = _run_from_root(command, budget_s)
    tail = printed[-6000:] if rc is not None else f"timed out after {budget_s} s"
    # speed.py writes after each section: a run stopped by its time limit
    # keeps the sections it finished (marked "unfinished")
    doc = json.loads(Path(out).read_text()) if Path(out).exists() else None
    return {
        "command": " ".join(command[1:]),
        "returncode": rc,
        "wall_s": round(time.perf_counter() - t0, 1),
        "output_tail": tail,
        "results": doc["results"] if doc else None,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--out",
        default=None,
        help="the JSON file (default benchmarks/results/gpu_check.json; "
        "gpu_check_rehearsal.json with --rehearse)",
    )
    p.add_argument("--wheels", default=str(DEFAULT_WHEELS), metavar="DIR")
    p.add_argument("--reference", default=None, metavar="DIR")
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--download-wheels", metavar="DIR", default=None)
    p.add_argument("--verify-wheels", metavar="DIR", default=None)
    p.add_argument(
        "--rehearse",
        metavar="DIR",
        default=None,
        help="the CPU dry run in a fresh Python 3.12 environment shaped like a "
        "GPU machine (its torch, numpy, onnxruntime versions), installing from "
        "the wheel folder DIR as the machine will (downloads about 3 GB)",
    )
    p.add_argument(
        "--python", default="python3.12", help="for --verify-wheels and --rehearse"
    )
    p.add_argument(
        "--dry-run-on-cpu",
        action="store_true",
        help="run the whole check on the CPU (the CPU twins of the gpu tests, "
        "speed.py --device cpu --quick): tests this script where CUDA is absent",
    )
    p.add_argument(
        "--budgets",
        nargs=2,
        type=int,
        default=None,
        metavar=("TESTS_S", "SPEED_S"),
        help=f"time limits of the two parts (default {TEST_BUDGET_S} and "
        f"{SPEED_BUDGET_S} s on a GPU, 600 and 600 s for --dry-run-on-cpu)",
    )
    args = p.parse_args(argv)
    if args.download_wheels:
        names = download_wheels(args.download_wheels)
        print(f"{len(names)} wheels in {args.download_wheels}")
        return 0
    if args.verify_wheels:
        ok = verify_wheels(args.verify_wheels, python=args.python)
        print(
            f"wheel folder {args.verify_wheels}: {'complete' if ok else 'INCOMPLETE'}"
        )
        return 0 if ok else 1
    if args.rehearse:
        try:
            rc = rehearse(args.rehearse, python=args.python, out=args.out)
        except InstallError as exc:
            print(exc)
            return 1
        print(f"gpu-check rehearsal: {'passed' if rc == 0 else 'FAILED'} (exit {rc})")
        return rc

    try:
        import torch
    except ImportError:
        print("gpu-check: torch is not installed here, so there is no CUDA; skipped.")
        return 0
    device = "cpu" if args.dry_run_on_cpu else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print(
            f"gpu-check: CUDA is not available on this machine (torch "
            f"{torch.__version__}); nothing to check."
        )
        return 0

    started = time.time()
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    missing = missing_distributions()
    if missing:
        try:
            install_missing(missing, args.wheels)
        except InstallError as exc:
            print(exc, flush=True)
            path = record_install_failure(
                exc, device=device, missing=missing, started=started, out=args.out
            )
            print(f"gpu-check: nothing ran; wrote {path}")
            return 1
    from _common import write_results
    from speed import gpu_info, report

    budgets = args.budgets or (
        (TEST_BUDGET_S, SPEED_BUDGET_S) if device == "cuda" else (600, 600)
    )
    results = {
        "device": device,
        "gpu": gpu_info() if device == "cuda" else None,
        "installed_from_wheels": missing,
    }
    if not args.skip_tests:
        print(f"gpu-check: pytest on {device} ...", flush=True)
        results["tests"] = (
            run_gpu_tests(budgets[0])
            if device == "cuda"
            else run_gpu_tests(budgets[0], ["tests/test_gpu.py"], marker="not gpu")
        )
        print(results["tests"]["output_tail"][-2500:], flush=True)
    if not args.skip_speed:
        speed_budget = budgets[1]
        if device == "cuda" and args.budgets is None:
            # what the install and the tests left of the 6 minutes
            left = TOTAL_BUDGET_S - 10 - (time.time() - started)
            speed_budget = int(max(30, min(speed_budget, left)))
        print(f"gpu-check: speed.py --device {device} ...", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            results["speed"] = run_speed(
                Path(tmp) / "speed.json",
                speed_budget,
                reference=args.reference,
                threads=args.threads,
                device=device,
            )
        speed = results["speed"]
        if speed["results"]:
            print(report({"machine": _machine(), "results": speed["results"]}))
        else:
            print(speed["output_tail"])
    path = write_results("gpu_check", results, started=started, path=args.out)
    tests = results.get("tests", {})
    counts = tests.get("counts", {})
    ok_tests = args.skip_tests or (
        tests.get("returncode") == 0 and counts.get("passed", 0) >= 12
    )
    ok_speed = args.skip_speed or results["speed"]["returncode"] == 0
    name = results["gpu"]["name"] if results["gpu"] else "CPU dry run"
    print(
        f"gpu-check: {name}: tests {counts or 'not run'}, "
        f"speed {'done' if ok_speed else 'FAILED'}, "
        f"{time.time() - started:.0f} s; wrote {path}"
    )
    return 0 if ok_tests and ok_speed else 1


def _machine():
    from _common import machine_info

    return machine_info()


if __name__ == "__main__":
    sys.exit(main())
