"""Front-end speed and memory: the research loop vs. AudioLoader + MelSpectrogram.

Times the paper's perceptually weighted mel spectrogram (22,050 Hz, n_fft
2048, hop 512, 256 mels) of 5 s clips in a **mixed** set of files (WAV
16-bit, FLAC 16-bit, OGG/Vorbis; 22,050 and 44,100 Hz; mono and stereo, in
turn), computed

- the way research code does it, one file at a time:
  ``y, _ = librosa.load(path, sr=22050, duration=5)``, ``librosa.stft``,
  ``perceptual_weighting``, ``melspectrogram`` (the *research loop*);
- with ``AudioLoader(sr=22050, duration=5)`` + ``MelSpectrogram`` (librosa
  backend) with ``n_jobs=1`` and ``n_jobs=2`` (threads);
- with ``MelSpectrogram(backend="torch")`` (CPU here, CUDA where present).

Fairness: with *n* threads, the research loop runs as one process with *n*
BLAS/OpenMP threads available (``threadpoolctl``), as research code runs, and
the library runs ``n_jobs=n`` under the same limit. The methods are
interleaved (their order rotates every round) and repeated; best and median
are reported, since timings on a shared machine vary (the load average is
recorded). The library's output must equal the research loop's within
0.01 dB (the maximum absolute difference is printed).

A per-stage profile (decode, mixdown, resample, framing, FFT, power, dB,
weighting, mel projection, copies) of both paths, single-threaded, shows
each stage's share (thread CPU time, per clip); it runs the same calls as
the two paths, stage by stage, and checks that it reproduces their outputs.

Also measured: the time of a second ``Pipeline(memory=...)`` fit (the cached
re-fit), and the peak traced memory (``tracemalloc``; numpy allocations)
while turning N and 2N clips into spectrograms, minus the output arrays, to
show that the working memory does not grow with the number of clips.

Usage::

    python benchmarks/bench_frontend.py          # 600 clips timed; memory 300, 600
    python benchmarks/bench_frontend.py --quick  # 48 clips timed; memory 16, 32

or, from another script in ``benchmarks/``: ``from bench_frontend import run;
run(quick=True)`` (returns the results; ``write=True`` also writes them).
Audio files are written to a temporary folder and removed afterwards. The
machine (``_common.machine_info``) is printed with the figures; results go to
``benchmarks/results/bench_frontend.json`` (``_common.write_results``).
"""

import argparse
import itertools
import os
import shutil
import statistics
import tempfile
import time
import tracemalloc
import warnings
from collections import defaultdict

import numpy as np
import soundfile as sf
from _common import format_machine, machine_info, write_results

SR = 22050
N_FFT, HOP, N_MELS = 2048, 512, 256
#: The library's front end settings (also written with the results).
MEL_SETTINGS = {"sr": SR, "n_fft": N_FFT, "hop_length": HOP, "n_mels": N_MELS}
DURATION = 5.0
#: Maximum absolute difference (dB) allowed between the library and the loop.
TOLERANCE_DB = 0.01
#: (container, subtype) and (rate, channels) the mixed set cycles through.
FORMATS = (("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"))
LAYOUTS = ((22050, 1), (22050, 2), (44100, 1), (44100, 2))

RESEARCH = "research loop (librosa.load + librosa, per clip)"


def library_name(n_jobs, backend="librosa"):
    return f"AudioLoader+MelSpectrogram {backend} n_jobs={n_jobs}"


# ------------------------------------------------------------------ the data


def write_mixed_clips(folder, n_clips, duration=DURATION, seed=0):
    """Write ``n_clips`` distinct tone-plus-noise clips in mixed formats.

    Clip ``i`` takes format ``FORMATS[i % 3]`` and (rate, channels)
    ``LAYOUTS[(i // 3) % 4]``, so every 12 clips hold each combination once.
    Each channel is its own tone with amplitude modulation plus noise.

    Returns
    -------
    paths : list of str
    """
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_clips):
        ext, subtype = FORMATS[i % len(FORMATS)]
        file_sr, channels = LAYOUTS[(i // len(FORMATS)) % len(LAYOUTS)]
        t = np.arange(round(duration * file_sr)) / file_sr
        envelope = 1 + 0.5 * np.sin(2 * np.pi * 0.5 * t)
        y = np.stack(
            [
                0.3 * np.sin(2 * np.pi * rng.uniform(80, 2000) * t) * envelope
                + 0.05 * rng.standard_normal(t.size)
                for _ in range(channels)
            ],
            axis=-1,
        )
        path = os.path.join(folder, f"clip_{i:05d}_{file_sr}_{channels}ch.{ext}")
        sf.write(path, y.astype(np.float32), file_sr, subtype=subtype)
        paths.append(path)
    return paths


# ------------------------------------------------------------- the two paths


def research_loop(paths):
    """The reference code's processor, one file at a time."""
    import librosa

    freqs = librosa.fft_frequencies(sr=SR, n_fft=N_FFT)
    out = []
    for path in paths:
        y, _ = librosa.load(path, sr=SR, duration=DURATION)
        S = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, pad_mode="reflect"))
        with np.errstate(divide="ignore"):
            W = librosa.perceptual_weighting(
                S**2, freqs, ref=1.0, amin=1e-10, top_db=80
            )
        M = librosa.feature.melspectrogram(S=W, sr=SR, n_mels=N_MELS)
        out.append(M.astype(np.float32))
    return np.stack(out)


def front_end(n_jobs, backend="librosa", duration=DURATION):
    from sklearn.pipeline import make_pipeline

    from sklearn_rfcnn.transformers import AudioLoader, MelSpectrogram

    return make_pipeline(
        AudioLoader(sr=SR, duration=duration, n_jobs=n_jobs),
        MelSpectrogram(**MEL_SETTINGS, backend=backend, n_jobs=n_jobs),
    )


# ------------------------------------------------------------ stage profiles


class _Stages:
    """CPU time of this thread per named stage: ``with stages("fft"): ...``.

    Thread CPU time, not wall time: the profile runs on one thread, and CPU
    time is far less disturbed by other processes on a shared machine.
    """

    def __init__(self):
        self.seconds = defaultdict(float)
        self._name = None

    def __call__(self, name):
        self._name = name
        return self

    def __enter__(self):
        self._start = time.thread_time()

    def __exit__(self, *exc):
        self.seconds[self._name] += time.thread_time() - self._start


def research_loop_staged(paths, stages):
    """:func:`research_loop` split into stages (``librosa.load`` opened up)."""
    import librosa

    freqs = librosa.fft_frequencies(sr=SR, n_fft=N_FFT)
    out = []
    for path in paths:
        with stages("decode"):  # librosa.load's soundfile read
            with sf.SoundFile(path) as f:
                native_sr = f.samplerate
                frames = int(DURATION * native_sr)
                y = f.read(frames=frames, dtype="float32", always_2d=False).T
        with stages("mixdown"):
            y = librosa.to_mono(y)
        with stages("resample"):
            y = librosa.resample(y, orig_sr=native_sr, target_sr=SR, res_type="soxr_hq")
        with stages("STFT (frames + FFT)"):
            D = librosa.stft(y, n_fft=N_FFT, hop_length=HOP, pad_mode="reflect")
        with stages("power"):
            P = np.abs(D) ** 2
        with stages("dB + weighting"):
            with np.errstate(divide="ignore"):
                W = librosa.perceptual_weighting(
                    P, freqs, ref=1.0, amin=1e-10, top_db=80
                )
        with stages("mel projection"):
            M = librosa.feature.melspectrogram(S=W, sr=SR, n_mels=N_MELS)
        with stages("copies"):
            out.append(M.astype(np.float32))
    with stages("copies"):
        return np.stack(out)


def library_staged(paths, stages):
    """``AudioLoader`` + ``MelSpectrogram`` split into stages (their helpers)."""
    import scipy.fft

    from sklearn_rfcnn.transformers import AudioLoader
    from sklearn_rfcnn.transformers import _loader as L
    from sklearn_rfcnn.transformers import _mel as M

    loader = AudioLoader(sr=SR, duration=DURATION)
    n_samples = round(DURATION * SR)
    waves = np.empty((len(paths), n_samples), dtype=np.float32)
    for i, path in enumerate(paths):
        with stages("decode"):
            y, native_sr, scale = loader._read_file(path, i)
        with stages("checks"):
            if y.dtype.kind == "f":
                np.isfinite(y).all()
        with stages("mixdown"):
            y = L._to_float(y, scale, True)
        with stages("resample"):
            if native_sr != SR:
                y = L._resample(y, native_sr, SR)
        with stages("copies"):
            waves[i] = L._fix_length(y, n_samples, "constant")[0]

    sparse_basis, offset = M._perceptual_tables(SR, N_FFT, N_MELS, 0.0, None)
    out = np.empty((len(paths), N_MELS, 1 + n_samples // HOP), dtype=np.float32)
    window = M._hann(N_FFT)[:, np.newaxis]
    step = max(1, M._STFT_BLOCK_BYTES // (4 * N_FFT))
    for y, o in zip(waves, out):
        with stages("framing + window"):
            padded = np.pad(y, N_FFT // 2, mode="reflect")
            frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
            S = np.empty((N_FFT // 2 + 1, frames.shape[0]), dtype=np.float32)
        for start in range(0, frames.shape[0], step):
            with stages("framing + window"):
                windowed = frames[start : start + step].T * window
            with stages("FFT"):
                D = scipy.fft.rfft(windowed, axis=0, overwrite_x=True)
            with stages("power"):  # the magnitude: dB is 20 log10 of it
                np.abs(D, out=S[:, start : start + step])
        with stages("dB + weighting"):
            np.maximum(S, max(M._SQRT_AMIN, S.max() * M._TOP_DB_RATIO), out=S)
            np.log(S, out=S)
        with stages("mel projection"):
            o[...] = sparse_basis @ S
        with stages("dB + weighting"):
            o *= 2 * M._DB_PER_LN
            o += offset
    return out


def bench_stages(paths, repeat, reference, ours):
    """Per-stage seconds (best of ``repeat``) and shares of both paths, 1 thread."""
    from threadpoolctl import threadpool_limits

    result = {}
    for name, fn, expected in (
        ("research loop", research_loop_staged, reference),
        ("library", library_staged, ours),
    ):
        runs = []
        with threadpool_limits(1):
            for _ in range(repeat):
                stages = _Stages()
                out = fn(paths, stages)
                runs.append(stages.seconds)
        # the staged code must compute what the real path computes
        drift = float(np.abs(out - expected).max())
        seconds = {k: min(run[k] for run in runs) for k in runs[0]}
        total = sum(seconds.values())
        result[name] = {
            "seconds": seconds,
            "share": {k: v / total for k, v in seconds.items()},
            "total_s": total,
            "max_abs_diff_db_vs_path": drift,
        }
    return result


# ------------------------------------------------------------------- timings


def bench_throughput(paths, repeat, *, torch_backend=True):
    """Interleaved timings (all rounds) and the outputs' differences."""
    from threadpoolctl import threadpool_limits

    # warm-up: imports, FFT plans, filterbanks, torch kernels
    research_loop(paths[:3])
    front_end(1).fit_transform(paths[:3])
    methods = []
    for threads in (1, 2):
        methods.append((f"{RESEARCH} threads={threads}", threads, research_loop))
        methods.append((library_name(threads), threads, front_end(threads)))
    if torch_backend:
        torch_pipe = front_end(2, "torch")
        torch_pipe.fit_transform(paths[:3])
        methods.append((library_name(2, "torch"), 2, torch_pipe))

    seconds, cpu_seconds = defaultdict(list), defaultdict(list)
    reference, ours, max_diff = None, None, {}
    for r in range(repeat):
        shift = r % len(methods)
        for name, threads, method in methods[shift:] + methods[:shift]:
            fn = method if callable(method) else method.fit_transform
            with threadpool_limits(threads):
                start, cpu_start = time.perf_counter(), time.process_time()
                out = fn(paths)
                seconds[name].append(time.perf_counter() - start)
                cpu_seconds[name].append(time.process_time() - cpu_start)
            if r == 0:  # round 0 runs the research loop (threads=1) first
                if reference is None:
                    reference = out
                max_diff[name] = float(np.abs(out - reference).max())
                if name == library_name(1):
                    ours = out
            del out
    return dict(seconds), dict(cpu_seconds), max_diff, reference, ours


def summarize(seconds, cpu_seconds, n_clips):
    """Best/median seconds, clips/s and the library-vs-research ratios.

    ``cpu_s`` is the process CPU time of the same calls (less disturbed than
    wall time by other processes on the machine); the single-threaded ratio
    is also given on it.
    """
    rows = {
        name: {
            "best_s": min(times),
            "median_s": statistics.median(times),
            "all_s": times,
            "clips_per_s_best": n_clips / min(times),
            "cpu_best_s": min(cpu_seconds[name]),
            "cpu_all_s": cpu_seconds[name],
        }
        for name, times in seconds.items()
    }
    ratios = {}
    for threads in (1, 2):
        loop = rows[f"{RESEARCH} threads={threads}"]
        lib = rows[library_name(threads)]
        ratios[f"threads={threads}"] = {
            "best": loop["best_s"] / lib["best_s"],
            "median": loop["median_s"] / lib["median_s"],
        }
    ratios["threads=1"]["cpu_best"] = (
        rows[f"{RESEARCH} threads=1"]["cpu_best_s"]
        / rows[library_name(1)]["cpu_best_s"]
    )
    # conservative: the faster of the loop's two thread settings vs n_jobs=2
    fastest_loop = min(rows[f"{RESEARCH} threads={t}"]["best_s"] for t in (1, 2))
    fastest_median = min(rows[f"{RESEARCH} threads={t}"]["median_s"] for t in (1, 2))
    ratios["n_jobs=2 vs fastest loop"] = {
        "best": fastest_loop / rows[library_name(2)]["best_s"],
        "median": fastest_median / rows[library_name(2)]["median_s"],
    }
    return rows, ratios


def _native_threads(limit):
    """The BLAS/OpenMP pools and their thread counts under ``threadpool_limits``."""
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limit):
        return [
            f"{pool['internal_api']} {pool['num_threads']}"
            for pool in threadpool_info()
        ]


def bench_cache(paths, cache_dir):
    from sklearn.pipeline import Pipeline

    from sklearn_rfcnn.transformers import AudioLoader, BandStandardizer, MelSpectrogram

    def make():
        return Pipeline(
            [
                ("load", AudioLoader(sr=SR, duration=DURATION, n_jobs=2)),
                ("mel", MelSpectrogram(sr=SR, n_mels=N_MELS, n_jobs=2)),
                ("norm", BandStandardizer()),
            ],
            memory=cache_dir,
        )

    start = time.perf_counter()
    make().fit(paths)
    first = time.perf_counter() - start
    start = time.perf_counter()
    make().fit(paths)
    second = time.perf_counter() - start
    return {"first fit": first, "cached re-fit": second}


def bench_memory(paths):
    """Peak traced memory while loading + transforming, minus the outputs."""
    from sklearn_rfcnn.transformers import AudioLoader, MelSpectrogram

    loader = AudioLoader(sr=SR, duration=DURATION, n_jobs=2)
    mel = MelSpectrogram(sr=SR, n_mels=N_MELS, n_jobs=2)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    waves = loader.transform(paths)
    after_load = tracemalloc.get_traced_memory()[1] - base
    spec = mel.transform(waves)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    outputs = waves.nbytes + spec.nbytes
    return {
        "n_clips": len(paths),
        "waveforms_MB": waves.nbytes / 2**20,
        "spectrograms_MB": spec.nbytes / 2**20,
        "peak_MB": peak / 2**20,
        "peak_loading_MB": after_load / 2**20,
        "overhead_MB": (peak - outputs) / 2**20,
    }


# -------------------------------------------------------------------- report


def _print_report(result):
    n = result["n_clips"]
    print(
        f"\n{n} clips of {DURATION:g} s, mixed WAV/FLAC/OGG at 22.05/44.1 kHz, "
        f"mono/stereo -> {SR} Hz, {N_MELS} perceptual mels; "
        f"{result['repeat']} interleaved rounds\n"
    )
    print(f"{'method':<62}{'best s':>8}{'median s':>10}{'clips/s':>9}{'cpu s':>8}")
    for name, row in result["timings"].items():
        print(
            f"{name:<62}{row['best_s']:8.2f}{row['median_s']:10.2f}"
            f"{row['clips_per_s_best']:9.1f}{row['cpu_best_s']:8.2f}"
        )
    print("\nlibrary / research loop speed-up (same threads available):")
    for name, ratio in result["speedup_vs_loop"].items():
        cpu = f"   CPU time {ratio['cpu_best']:5.2f}x" if "cpu_best" in ratio else ""
        print(
            f"  {name:<28} best {ratio['best']:5.2f}x   median {ratio['median']:5.2f}x"
            + cpu
        )
    diff = result["max_abs_diff_db_vs_loop"]
    worst = max(diff[library_name(t)] for t in (1, 2))
    verdict = "OK" if worst <= TOLERANCE_DB else "FAIL"
    print(
        f"\nmax |library - research loop| = {worst:.2e} dB "
        f"(tolerance {TOLERANCE_DB} dB: {verdict})"
        + (
            f"; torch backend {diff[library_name(2, 'torch')]:.2e} dB"
            if library_name(2, "torch") in diff
            else ""
        )
    )
    print("\nper-stage share of the single-threaded CPU time (best of 3 rounds):")
    stages = result["stages"]
    names = list(dict.fromkeys(itertools.chain(*(s["share"] for s in stages.values()))))
    print(f"  {'stage':<22}" + "".join(f"{k:>18}" for k in stages))
    for stage in names:
        cells = []
        for s in stages.values():
            if stage in s["seconds"]:
                ms = 1e3 * s["seconds"][stage] / n
                cells.append(f"{s['share'][stage]:6.1%} {ms:6.2f} ms")
            else:
                cells.append("-")
        print(f"  {stage:<22}" + "".join(f"{c:>18}" for c in cells))
    print(
        f"  {'total':<22}"
        + "".join(
            f"{'':>7}{1e3 * s['total_s'] / n:6.2f} ms".rjust(18)
            for s in stages.values()
        )
    )
    cache = result["cache"]
    print(
        f"\nPipeline(memory=...): first fit {cache['first fit']:.2f} s, cached re-fit "
        f"{cache['cached re-fit']:.3f} s "
        f"({cache['first fit'] / cache['cached re-fit']:.0f}x faster)"
    )
    header = ("clips", "waves MB", "specs MB", "peak MB", "overhead MB")
    print("\n" + "".join(f"{h:>{w}}" for h, w in zip(header, (6, 10, 10, 10, 13))))
    for m in result["memory"]:
        print(
            f"{m['n_clips']:6d}{m['waveforms_MB']:10.1f}{m['spectrograms_MB']:10.1f}"
            f"{m['peak_MB']:10.1f}{m['overhead_MB']:13.1f}"
        )


def run(
    quick=False,
    *,
    n_clips=None,
    memory_clips=None,
    repeat=None,
    torch_backend=True,
    verbose=True,
    write=False,
    out=None,
):
    """Run the front-end benchmark; return its results as a dict.

    Parameters
    ----------
    quick : bool, default=False
        48 clips timed, 3 rounds, memory with 16 and 32 clips (instead of
        600 clips, 3 rounds, memory with 300 and 600 clips).
    n_clips, memory_clips, repeat : int, optional
        Override the clip counts and the number of interleaved rounds.
    torch_backend : bool, default=True
        Also time ``MelSpectrogram(backend="torch")``.
    verbose : bool, default=True
        Print the machine and the figures.
    write : bool, default=False
        Also write them with ``_common.write_results`` (to ``out`` if given).

    Returns
    -------
    result : dict
        ``timings`` (best/median/all seconds per method), ``speedup_vs_loop``
        (best and median ratios, 1 and 2 threads), ``max_abs_diff_db_vs_loop``,
        ``identical`` (within 0.01 dB), ``stages`` (per-stage seconds and
        shares), ``cache``, ``memory``, ``loadavg``, ..., and ``summary``
        (the median ratios and the dB difference, for ``speed.py``).
    """
    started = time.time()
    n_clips = n_clips or (48 if quick else 600)
    memory_clips = memory_clips or (16 if quick else 300)
    repeat = repeat or 3

    import torch

    torch.set_num_threads(1)
    if verbose:
        print(format_machine(machine_info()))
    folder = tempfile.mkdtemp(prefix="bench_frontend_")
    loadavg_before = os.getloadavg()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            paths = write_mixed_clips(folder, max(n_clips, 2 * memory_clips))
            timed_paths = paths[:n_clips]
            seconds, cpu_seconds, max_diff, reference, ours = bench_throughput(
                timed_paths, repeat, torch_backend=torch_backend
            )
            stages = bench_stages(timed_paths, 3, reference, ours)
            cache = bench_cache(timed_paths, os.path.join(folder, "cache"))
            memory = [bench_memory(paths[:n]) for n in (memory_clips, 2 * memory_clips)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    timings, ratios = summarize(seconds, cpu_seconds, n_clips)
    worst = max(max_diff[library_name(t)] for t in (1, 2))
    result = {
        "mode": "quick" if quick else "full",
        "n_clips": n_clips,
        "repeat": repeat,
        "duration_s": DURATION,
        "file_set": {
            "formats": [f"{ext}/{subtype}" for ext, subtype in FORMATS],
            "rates_channels": [list(layout) for layout in LAYOUTS],
        },
        "settings": dict(MEL_SETTINGS),
        "timings": timings,
        "speedup_vs_loop": ratios,
        "max_abs_diff_db_vs_loop": max_diff,
        "identical": worst <= TOLERANCE_DB,
        "tolerance_db": TOLERANCE_DB,
        "stages": stages,
        "cache": cache,
        "memory": memory,
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "native_threads_at_2": _native_threads(2),
        # one line for benchmarks/speed.py's report: median ratios to the loop
        "summary": {
            "library x research loop, 1 thread": ratios["threads=1"]["median"],
            "library x research loop, 2 threads": ratios["threads=2"]["median"],
            "n_jobs=2 x fastest loop": ratios["n_jobs=2 vs fastest loop"]["median"],
            "max_abs_diff_db": worst,
        },
    }
    if verbose:
        _print_report(result)
    if write:
        path = write_results("bench_frontend", result, started=started, path=out)
        if verbose:
            print(f"\nwritten to {path}")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small, fast run")
    parser.add_argument("--n-clips", type=int, help="clips timed (default 600/48)")
    parser.add_argument(
        "--memory-clips", type=int, help="N for the memory test (default 300/16)"
    )
    parser.add_argument("--repeat", type=int, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--no-torch", action="store_true", help="skip the torch backend timing"
    )
    parser.add_argument(
        "--out", default=None, help="JSON file (default: results/<name>.json)"
    )
    args = parser.parse_args(argv)
    return run(
        args.quick,
        n_clips=args.n_clips,
        memory_clips=args.memory_clips,
        repeat=args.repeat,
        torch_backend=not args.no_torch,
        write=True,
        out=args.out,
    )


if __name__ == "__main__":
    main()
