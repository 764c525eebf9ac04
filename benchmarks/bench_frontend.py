"""Front-end throughput and memory: research-style librosa loop vs. the transformers.

Measures clips per second of the paper's perceptually weighted mel spectrogram
(22,050 Hz, n_fft 2048, hop 512, 256 mels) on generated 10 s clips, computed

- the way research code does it: ``librosa.load`` + STFT +
  ``perceptual_weighting`` + ``melspectrogram`` one file at a time;
- with ``AudioLoader`` + ``MelSpectrogram`` (librosa backend), ``n_jobs=1`` and
  ``n_jobs=2`` (threads);
- with ``MelSpectrogram(backend="torch")`` (CPU here, CUDA where present);

plus the time of a second ``Pipeline(memory=...)`` fit (the cached re-fit),
and the peak traced memory (``tracemalloc``; numpy allocations) while turning
N and 2N clips into spectrograms, minus the output arrays, to show that the
working memory does not grow with the number of clips.

Usage::

    python benchmarks/bench_frontend.py          # 200 clips timed; memory 1000, 2000
    python benchmarks/bench_frontend.py --quick  # 24 clips timed; memory 16, 32

Audio files are written to a temporary folder (WAV, 16-bit, ``--file-sr``
Hz, so every method also resamples) and removed afterwards. The machine
(``_common.machine_info``) is printed with the figures; results go to
``benchmarks/results/bench_frontend.json`` (``_common.write_results``). Run
with ``OMP_NUM_THREADS=1``; the machine's load average is recorded, since
timings on a shared machine vary.
"""

import argparse
import os
import shutil
import tempfile
import time
import tracemalloc
import warnings

import numpy as np
import soundfile as sf
from _common import format_machine, machine_info, write_results

SR = 22050
N_FFT, HOP, N_MELS = 2048, 512, 256


def write_clips(folder, n_clips, duration, file_sr, seed=0):
    """Write ``n_clips`` distinct tone-plus-noise clips; return their paths."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(duration * file_sr)) / file_sr
    paths = []
    for i in range(n_clips):
        f0 = rng.uniform(80, 2000)
        y = 0.3 * np.sin(2 * np.pi * f0 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
        y += 0.05 * rng.standard_normal(t.size)
        path = os.path.join(folder, f"clip_{i:05d}.wav")
        sf.write(path, y.astype(np.float32), file_sr, subtype="PCM_16")
        paths.append(path)
    return paths


def research_loop(paths):
    """The reference code's processor, one file at a time."""
    import librosa

    freqs = librosa.fft_frequencies(sr=SR, n_fft=N_FFT)
    out = []
    for path in paths:
        y, _ = librosa.load(path, sr=SR, mono=True)
        S = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, pad_mode="reflect"))
        with np.errstate(divide="ignore"):
            W = librosa.perceptual_weighting(
                S**2, freqs, ref=1.0, amin=1e-10, top_db=80
            )
        M = librosa.feature.melspectrogram(S=W, sr=SR, n_mels=N_MELS)
        out.append(M.astype(np.float32))
    return np.stack(out)


def front_end(n_jobs, backend="librosa", duration=10.0):
    from sklearn.pipeline import make_pipeline

    from sklearn_rfcnn.transformers import AudioLoader, MelSpectrogram

    return make_pipeline(
        AudioLoader(sr=SR, duration=duration, n_jobs=n_jobs),
        MelSpectrogram(
            sr=SR,
            n_fft=N_FFT,
            hop_length=HOP,
            n_mels=N_MELS,
            backend=backend,
            n_jobs=n_jobs,
        ),
    )


def timed(fn, *args, repeat=1):
    """Best wall time of ``repeat`` calls (the least disturbed on a shared machine)."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_throughput(paths, duration, repeat):
    rows = {}
    # warm-up: imports, numba, FFT plans, torch kernels
    research_loop(paths[:2])
    front_end(1, duration=duration).fit_transform(paths[:2])
    front_end(1, "torch", duration).fit_transform(paths[:2])

    seconds, reference = timed(research_loop, paths, repeat=repeat)
    rows["librosa loop (per clip)"] = seconds
    for n_jobs in (1, 2):
        pipe = front_end(n_jobs, duration=duration)
        seconds, ours = timed(pipe.fit_transform, paths, repeat=repeat)
        rows[f"AudioLoader+MelSpectrogram n_jobs={n_jobs}"] = seconds
    max_diff_librosa = float(np.abs(ours - reference).max())
    pipe = front_end(2, "torch", duration)
    seconds, ours_torch = timed(pipe.fit_transform, paths, repeat=repeat)
    rows["AudioLoader+MelSpectrogram torch n_jobs=2"] = seconds
    max_diff_torch = float(np.abs(ours_torch - reference).max())
    return rows, {"librosa": max_diff_librosa, "torch": max_diff_torch}


def bench_cache(paths, duration, cache_dir):
    from sklearn.pipeline import Pipeline

    from sklearn_rfcnn.transformers import AudioLoader, BandStandardizer, MelSpectrogram

    def make():
        return Pipeline(
            [
                ("load", AudioLoader(sr=SR, duration=duration, n_jobs=2)),
                ("mel", MelSpectrogram(sr=SR, n_mels=N_MELS, n_jobs=2)),
                ("norm", BandStandardizer()),
            ],
            memory=cache_dir,
        )

    first, _ = timed(make().fit, paths)
    second, _ = timed(make().fit, paths)
    return {"first fit": first, "cached re-fit": second}


def bench_memory(paths, duration):
    """Peak traced memory while loading + transforming, minus the outputs."""
    from sklearn_rfcnn.transformers import AudioLoader, MelSpectrogram

    loader = AudioLoader(sr=SR, duration=duration, n_jobs=2)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small, fast run")
    parser.add_argument("--n-clips", type=int, help="clips timed (default 200/24)")
    parser.add_argument(
        "--memory-clips", type=int, help="N for the memory test (default 1000/16)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="best of N timings")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per clip")
    parser.add_argument("--file-sr", type=int, default=44100, help="rate of the files")
    parser.add_argument(
        "--out", default=None, help="JSON file (default: results/<name>.json)"
    )
    args = parser.parse_args(argv)
    started = time.time()
    n_clips = args.n_clips or (24 if args.quick else 200)
    n_memory = args.memory_clips or (16 if args.quick else 1000)

    import torch

    torch.set_num_threads(1)
    print(format_machine(machine_info()))
    warnings.simplefilter("ignore", DeprecationWarning)
    folder = tempfile.mkdtemp(prefix="bench_frontend_")
    try:
        paths = write_clips(
            folder, max(n_clips, 2 * n_memory), args.duration, args.file_sr
        )
        rows, max_diff = bench_throughput(paths[:n_clips], args.duration, args.repeat)
        cache = bench_cache(
            paths[:n_clips], args.duration, os.path.join(folder, "cache")
        )
        memory = [
            bench_memory(paths[:n], args.duration) for n in (n_memory, 2 * n_memory)
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    loop = rows["librosa loop (per clip)"]
    print(
        f"\n{n_clips} clips of {args.duration:g} s ({args.file_sr} Hz WAV -> {SR} Hz, "
        f"{N_MELS} perceptual mels)\n"
    )
    print(f"{'method':<44}{'s':>8}{'clips/s':>10}{'speed-up':>10}")
    for name, seconds in rows.items():
        print(
            f"{name:<44}{seconds:8.2f}{n_clips / seconds:10.1f}{loop / seconds:9.2f}x"
        )
    print(
        f"\nmax |ours - librosa loop| (dB): librosa backend {max_diff['librosa']:.2e},"
        f" torch backend {max_diff['torch']:.2e}"
    )
    print(
        f"\nPipeline(memory=...): first fit {cache['first fit']:.2f} s, cached re-fit "
        f"{cache['cached re-fit']:.3f} s "
        f"({cache['first fit'] / cache['cached re-fit']:.0f}x faster)"
    )
    header = ("clips", "waves MB", "specs MB", "peak MB", "overhead MB")
    print("\n" + "".join(f"{h:>{w}}" for h, w in zip(header, (6, 10, 10, 10, 13))))
    for m in memory:
        print(
            f"{m['n_clips']:6d}{m['waveforms_MB']:10.1f}{m['spectrograms_MB']:10.1f}"
            f"{m['peak_MB']:10.1f}{m['overhead_MB']:13.1f}"
        )

    result = {
        "mode": "quick" if args.quick else "full",
        "n_clips": n_clips,
        "repeat": args.repeat,
        "duration_s": args.duration,
        "file_sr": args.file_sr,
        "settings": {"sr": SR, "n_fft": N_FFT, "hop_length": HOP, "n_mels": N_MELS},
        "seconds": rows,
        "clips_per_s": {k: n_clips / v for k, v in rows.items()},
        "speedup_vs_loop": {k: loop / v for k, v in rows.items()},
        "max_abs_diff_db_vs_loop": max_diff,
        "cache": cache,
        "memory": memory,
        "loadavg": os.getloadavg(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }
    out = write_results("bench_frontend", result, started=started, path=args.out)
    print(f"\nwritten to {out}")
    return result


if __name__ == "__main__":
    main()
