"""Benchmark scripts run end to end (smoke tests; figures are not asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_quick(script, *args, env=None, timeout=600):
    """Run ``benchmarks/<script> --quick *args`` on one thread (``env`` on top).

    Fails the test with the tail of the script's stderr.
    """
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _read_results(out, name):
    """The JSON document ``out`` of benchmark ``name``, with its machine entry."""
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == name
    assert {"cpu", "vector_extensions", "torch"} <= set(doc["machine"])
    return doc


@pytest.mark.slow
def test_accuracy_quick_runs_every_kind_of_row_and_resumes(tmp_path):
    out = tmp_path / "accuracy_quick.jsonl"
    env = {"RFCNN_DATA_HOME": str(tmp_path / "data")}
    args = ("--out", str(out), "--jobs", "1")
    first = _run_quick("accuracy.py", *args, env=env, timeout=900)
    assert "skipped 0 finished run(s)" in first.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    rows = {r["row"] for r in records}
    for kind in ("rho=", "rho_f=2 ", "rho_t=2", "vgg_cnn", "resnet18", "resnet34"):
        assert any(kind in row for row in rows), kind
    for kind in ("CP-FAResNet", "Shake-Shake", "RFOptunaSearchCV"):
        assert any(row.startswith(kind) for row in rows), kind
    for r in records:
        assert 0.0 <= r["map_in_timbre"] <= 1.0
        assert r["flops_per_clip"] > 0 and r["n_params"] > 0 and r["fit_s"] >= 0
    assert out.with_name("accuracy_quick_rf.png").stat().st_size > 0
    # a second run finds every run finished: it retrains nothing
    second = _run_quick("accuracy.py", *args, env=env, timeout=900)
    assert f"skipped {len(records)} finished run(s)" in second.stdout
    assert len(out.read_text().splitlines()) == len(records)
    assert "| rho=0 | 2 |" in second.stdout  # the table: seeds per row


@pytest.mark.slow
def test_bench_onnx_quick_runs_and_writes_valid_json(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "bench_onnx_quick.json"
    _run_quick("bench_onnx.py", "--output", str(out))
    doc = _read_results(out, "bench_onnx")
    methods = doc["results"]["configs"]["tiny"]["methods"]
    assert set(methods) == {"torch_fp32", "torch_bf16", "onnxruntime"}
    for r in methods.values():
        assert r["samples_per_s_best"] > 0
    assert methods["torch_fp32"]["ratio_best_vs_torch_fp32"] == 1.0
    assert methods["onnxruntime"]["max_abs_diff_vs_torch_fp32"] < 1e-4


@pytest.mark.slow
def test_bench_store_quick_runs_and_writes_valid_json(tmp_path):
    out = tmp_path / "bench_store_quick.json"
    _run_quick("bench_store.py", "--out", str(out), "--tmp", str(tmp_path))
    doc = _read_results(out, "bench_store")
    res = doc["results"]
    assert len(res["memory"]["rows"]) == 2
    for row in res["memory"]["rows"]:
        assert row["build_maxrss_mb"] > 0 and row["read_epoch_maxrss_mb"] > 0
    formats = res["formats"]["formats"]
    assert formats["flat_time_major_pread (chosen)"]["crops_per_s_warm"] > 0
    assert res["training"]["crops_per_s_store"] > 0
    assert not [p for p in tmp_path.glob("bench_store_*") if p.is_dir()]  # scratch


@pytest.mark.slow
def test_bench_dask_quick_runs_and_writes_valid_json(tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "bench_dask_quick.json"
    _run_quick("bench_dask.py", "--out", str(out), "--tmp", str(tmp_path))
    doc = _read_results(out, "bench_dask_quick")
    res = doc["results"]
    assert res["workers"] == 2 and res["cluster_start_s"] > 0
    assert res["search"]["same_best_params_and_scores"]
    assert res["front_end"]["bit_identical"] and res["front_end"]["store_bit_identical"]
    assert set(res["ratios"]) >= {
        "search_local_over_dask_warm",
        "front_end_local_over_dask",
    }
    assert not [p for p in tmp_path.glob("bench_dask_*") if p.is_dir()]  # scratch


@pytest.mark.slow
def test_bench_search_quick_runs_and_writes_valid_json(tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "bench_search_quick.json"
    _run_quick("bench_search.py", "--output", str(out))
    doc = _read_results(out, "bench_search")
    res = doc["results"]
    assert set(res["wall_time_s"]) == {"1_worker", "n_jobs_2", "2_processes"}
    assert set(res["speedup_vs_1_worker"]) == {"n_jobs_2", "2_processes"}
    # every run finished the whole search; two processes split it
    for label, counts in res["trials_per_worker"].items():
        assert sum(counts) == res["n_trials"], label
    assert len(res["trials_per_worker"]["2_processes"]) <= 2
    assert {"imports", "storage", "study", "total"} <= set(res["cold_startup_s"])


def test_bench_load_quick_runs_and_writes_valid_json(tmp_path):
    out = tmp_path / "bench_load_quick.json"
    _run_quick("bench_load.py", "--out", str(out))
    doc = _read_results(out, "bench_load_quick")
    row = doc["results"]["configs"]["tiny"]
    assert set(row["methods"]) == {"checked", "bare"}
    for method in row["methods"].values():
        assert len(method["seconds_all"]) == doc["results"]["rounds"]
    assert row["ratio_median_checked_vs_bare"] > 0


@pytest.mark.slow
def test_bench_preflight_quick_runs_and_writes_valid_json(tmp_path):
    out = tmp_path / "bench_preflight_quick.json"
    _run_quick("bench_preflight.py", "--out", str(out))
    res = _read_results(out, "bench_preflight")["results"]
    assert res["rho_40"]["runs"] == res["missing_folder"]["runs"] == 2
    assert "--rho" in res["messages"]["rho_40"]
    assert "does not exist" in res["messages"]["missing_folder"]


@pytest.mark.slow
def test_bench_malloc_quick_compares_the_two_settings_in_child_processes(tmp_path):
    out = tmp_path / "bench_malloc_quick.json"
    _run_quick(
        "bench_malloc.py", "--configs", "tiny", "--threads", "1", "--out", str(out)
    )
    res = _read_results(out, "bench_malloc")["results"]
    from sklearn_rfcnn.utils._malloc import KEEP_FREED_MEMORY_ENV, malloc_tunable

    # the children run without this setting and glibc's variables
    env = {
        k: v
        for k, v in os.environ.items()
        if k != KEEP_FREED_MEMORY_ENV and not k.startswith("MALLOC_")
    }
    if malloc_tunable(env) is not None:
        assert res == {"skipped": malloc_tunable(env)}
        return
    row = res["tiny"]
    assert {len(runs) for runs in row["runs"].values()} == {1}
    for (run,) in row["runs"].values():
        assert len(run["epoch_s"]) == row["epochs"] == 2
        assert run["fit_minor_faults"] > 0 and run["peak_rss_mb"] > 0
        assert run["partial_fit_s"] > 0 and run["partial_fit_released_s"] > 0
        assert run["rss_idle_mb"] > 0 and run["rss_after_fit_mb"] > 0
    assert row["fit_speedup_median"] > 0 and row["peak_rss_ratio"] > 0
    assert row["partial_fit_in_a_row_vs_released_median"] > 0


# --------------------------------------------------------------------------
# speed.py and the GPU check (benchmarks/gpu_check.py, `make gpu-check`)
# --------------------------------------------------------------------------
def _load_benchmark(script, name):
    """A benchmark script imported as module ``name``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gpu_check_module():
    return _load_benchmark("gpu_check.py", "gpu_check")


def _speed_module(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # speed.py prepends its folder
    return _load_benchmark("speed.py", "_speed_under_test")


def test_machine_slug_names_the_cpu_kind_and_a_onednn_cap(monkeypatch):
    common = _speed_module(monkeypatch).machine_slug.__globals__
    slug = common["machine_slug"]
    info = {"cpu": "AMD EPYC 9R14", "vector_extensions": ["avx2", "avx512f"]}
    assert slug(info) == "amd-epyc-9r14-avx512"
    assert slug({**info, "vector_extensions": ["avx2"]}) == "amd-epyc-9r14-avx2"
    capped = {**info, "onednn_max_cpu_isa": "AVX2"}
    assert slug(capped) == "amd-epyc-9r14-capped-avx2"
    amx = {"cpu": "Intel Xeon", "vector_extensions": ["avx512_bf16", "amx_bf16"]}
    assert slug(amx) == "intel-xeon-amx"


def test_speed_records_the_openmp_wait_policy_it_ran_with(monkeypatch):
    """speed.py leaves OpenMP's wait policy to the environment and records it;
    importing bench_model (as speed.py does, after torch has started) must not
    set it, or the record would name a policy the run did not have."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    speed = _speed_module(monkeypatch)
    _load_benchmark("bench_model.py", "_bench_model_under_test")
    assert "OMP_WAIT_POLICY" not in os.environ
    info = speed.machine_info()
    assert info["omp_wait_policy"] is None
    assert "OMP_WAIT_POLICY" not in speed.format_machine(info)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    info = speed.machine_info()
    assert info["omp_wait_policy"] == "PASSIVE"
    assert "OMP_WAIT_POLICY=PASSIVE" in speed.format_machine(info)


def test_speed_runs_each_phase_in_the_layout_auto_picks(monkeypatch):
    """On a CPU without AVX2 "auto" trains in NCHW and infers in channels-last:
    speed.py's model steps and bare loop (the estimator's baselines) do too."""
    import torch

    from sklearn_rfcnn.models import create_model
    from sklearn_rfcnn.utils import _torch

    speed = _speed_module(monkeypatch)
    monkeypatch.setattr(_torch, "cpu_avx512", lambda: False)
    monkeypatch.setattr(_torch, "cpu_avx2", lambda: False)
    monkeypatch.setattr(_torch, "cpu_native_bf16", lambda: ())
    precision, layout = speed.auto_mode("cpu")
    assert (precision, layout) == ("32", [False, True])
    assert speed._layout_text(layout) == " + channels-last for inference only"
    assert speed._layout_text(True) == " + channels-last"

    def weights_cl(model):
        return model.stage1[0].branch1.conv1.weight.is_contiguous(
            memory_format=torch.channels_last
        )

    # two input channels: with one, both layouts of a batch are contiguous
    model = create_model("cp_resnet", in_channels=2, rho=2, width=4, n_classes=3)
    x, y = torch.randn(2, 2, 16, 20), torch.zeros(2, 3)
    seen = []
    model.stem.conv.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].is_contiguous())
    )
    train_step, forward = speed._steps(model, x, y, precision, layout)
    bare = speed._BareLoop(model, precision, layout)
    for run, inference in [
        (train_step, False),
        (forward, True),
        (train_step, False),
        (lambda: bare.predict([(x, y)]), True),
        (lambda: bare.train([(x, y)]), False),
    ]:
        run()
        assert weights_cl(model) is inference
        assert seen[-1] is not inference


def test_speed_trains_with_nchw_weight_grads_where_the_estimator_does(monkeypatch):
    """On an AVX2 CPU without AVX-512, float32 channels-last: the model steps
    and the bare loop re-route the wide convolutions as the estimator's net."""
    import torch

    from sklearn_rfcnn.models import create_model
    from sklearn_rfcnn.utils import _conv_grad

    speed = _speed_module(monkeypatch)
    caps = {"avx2": True, "avx512_f": False, "avx512_bf16": False, "amx_bf16": False}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: dict(caps))
    assert speed.auto_mode("cpu") == ("32", True)
    monkeypatch.setattr(_conv_grad, "MIN_IN_CHANNELS", 4)
    monkeypatch.setattr(_conv_grad, "MIN_PIXELS", 1)
    seen = []
    apply = _conv_grad._Conv2dNCHWWeightGrad.apply
    monkeypatch.setattr(
        _conv_grad._Conv2dNCHWWeightGrad,
        "apply",
        lambda x, *a: seen.append(x.shape[1]) or apply(x, *a),
    )
    model = create_model("cp_resnet", rho=2, width=4, n_classes=3)
    x, y = torch.randn(2, 1, 16, 20), torch.zeros(2, 3)
    train_step, forward = speed._steps(model, x, y, "32", True)
    train_step()
    assert seen and min(seen) >= 4  # the wide ones, not the 1-channel stem
    per_step = len(seen)
    forward()  # inference: nothing
    speed._BareLoop(model, "32", True).predict([(x, y)])
    assert len(seen) == per_step
    speed._BareLoop(model, "32", True).train([(x, y)])
    assert len(seen) == 2 * per_step
    speed._BareLoop(model, "32", False).train([(x, y)])  # NCHW: nothing
    assert len(seen) == 2 * per_step


@pytest.mark.slow
def test_bench_conv_grad_quick_times_both_sections(tmp_path):
    out = tmp_path / "bench_conv_grad_quick.json"
    _run_quick("bench_conv_grad.py", "--threads", "1", "--out", str(out))
    res = _read_results(out, "bench_conv_grad")["results"]
    assert isinstance(res["nchw_weight_grads_pay"], bool)
    assert set(res["kernels"]) == {"quick_wide", "quick_narrow"}
    for row in res["kernels"].values():
        assert all(row[k] > 0 for k in row if k != "shape")
    step = res["step"]["tiny"]
    assert set(step) == {"nchw", "channels_last", "channels_last_nchw_weight_grads"}
    assert step["nchw"]["speedup_vs_nchw_median"] == pytest.approx(1.0)
    assert all(len(v["seconds"]) == 2 and v["median_s"] > 0 for v in step.values())


@pytest.mark.slow
def test_bench_batch_norm_quick_times_both_sections(tmp_path):
    out = tmp_path / "bench_batch_norm_quick.json"
    _run_quick("bench_batch_norm.py", "--threads", "1", "--out", str(out))
    res = _read_results(out, "bench_batch_norm")["results"]
    assert set(res["kernels"]) == {"bf16_c8", "bf16_c24", "float32_c8", "float32_c24"}
    for row in res["kernels"].values():
        assert row["torch_ms"] > 0 and row["wide_rows_ms"] > 0
        assert row["wide_rows_taken"] is False  # quick maps are below MIN_VALUES
    assert len(res["sizes"]) == 2
    assert all(r["values"] < 2**20 and r["torch_ms"] > 0 for r in res["sizes"].values())
    (step,) = res["step"].values()
    taken, total = step["batch_norms_on_wide_rows"]
    assert total >= 5 and taken == 0
    assert all(len(ts) == 2 for ts in step["seconds"].values())


@pytest.mark.slow
def test_bench_inference_quick_times_both_sections(tmp_path):
    out = tmp_path / "bench_inference_quick.json"
    _run_quick("bench_inference.py", "--threads", "1", "--out", str(out))
    res = _read_results(out, "bench_inference")["results"]
    assert {r["dtype"] for r in res["pool"].values()} == {"bf16", "float32"}
    for row in res["pool"].values():
        assert row["torch_ms"] > 0 and row["strided_ms"] > 0
        assert row["strided_taken"] is True  # 24 channels
    (inference,) = res["inference"].values()
    before, after = inference["batch_norms"]
    assert before > 5 and after == 1  # only the classifier's is left
    assert set(inference["speedup_median"]) == {"folded", "folded_pool"}
    assert all(len(ts) == 2 for ts in inference["seconds"].values())
    assert all(d < 0.1 for d in inference["max_abs_diff_over_max_abs"].values())
    copy_ms = inference["folded_copy_ms"]
    assert set(copy_ms) == {"build", "refresh", "unchanged"}
    assert all(v > 0 for v in copy_ms.values())


def test_speed_op_shares_split_the_profiled_time(monkeypatch):
    speed = _speed_module(monkeypatch)
    out = speed.op_shares("tiny", "fp32", steps=1)
    for kind in ("train", "inference"):
        shares = out[kind]["shares"]
        assert set(shares) == {*speed.OP_GROUPS, "rest"}
        assert sum(shares.values()) == pytest.approx(1.0)
        assert shares["convolution"] > 0.05 and shares["batch norm"] > 0
        # backward kernels run in the training step only
        assert (shares["convolution backward"] > 0.05) is (kind == "train")
        assert out[kind]["ms_per_call"] > 0
    assert out["adamw_step_ms"]["fused"] > 0
    text = speed.report(
        {
            "machine": speed.machine_info(),
            "results": {
                "device": "cpu",
                "auto": ["32", False],
                "ops": {"tiny_fp32": out},
            },
        }
    )
    assert "ops tiny_fp32 train (32" in text and "convolution" in text


def test_gpu_check_without_cuda_prints_one_line_and_exits_0(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present: the check would run for real")
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and "CUDA is not available" in lines[0]
    assert not out.exists()


def test_gpu_check_finds_the_gpu_tests_and_reads_junit(tmp_path):
    gpu_check = _gpu_check_module()
    files = gpu_check.gpu_test_files()
    assert "tests/test_gpu.py" in files and "tests/test_hear.py" in files
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite><testcase classname="tests.test_gpu" name="a" '
        'time="1.5"/><testcase classname="t" name="b" time="0"><failure '
        'message="boom"/></testcase><testcase classname="t" name="c"><skipped '
        'message="needs a CUDA device"/></testcase></testsuite></testsuites>'
    )
    cases = gpu_check._junit_cases(xml)
    assert [(c["test"], c["outcome"]) for c in cases] == [
        ("tests.test_gpu::a", "passed"),
        ("t::b", "failed"),
        ("t::c", "skipped"),
    ]
    assert cases[0]["seconds"] == 1.5 and cases[1]["message"] == "boom"


def test_gpu_check_without_wheels_names_the_make_target(tmp_path):
    gpu_check = _gpu_check_module()
    with pytest.raises(gpu_check.InstallError, match="make gpu-wheels"):
        gpu_check.install_missing(["skorch"], tmp_path)


def test_gpu_check_records_a_failed_install_in_its_json(tmp_path, monkeypatch):
    """A pip failure on the GPU machine still leaves the one JSON file, with
    pip's words, instead of a traceback and nothing to fetch."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # it adds benchmarks/
    gpu_check = _gpu_check_module()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "not_a_real-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(gpu_check.InstallError, match="pip could not install") as info:
        gpu_check.install_missing(["no-such-distribution-rfcnn"], wheels)
    assert "no-such-distribution-rfcnn" in str(info.value)
    out = tmp_path / "gpu_check.json"
    path = gpu_check.record_install_failure(
        info.value,
        device="cpu",
        missing=["no-such-distribution-rfcnn"],
        started=0.0,
        out=out,
    )
    res = _read_results(path, "gpu_check")["results"]
    assert res["missing"] == ["no-such-distribution-rfcnn"]
    assert res["installed_from_wheels"] == [] and res["gpu"] is None
    assert "pip could not install" in res["install_error"]


def test_gpu_check_rehearsal_installs_what_the_machine_has_and_nothing_it_lacks(
    tmp_path,
):
    """The rehearsal's environment is the GPU machine's: its pinned versions,
    what the wheel folder leaves to it, and none of what the check must
    install from the folder (else the rehearsal would not exercise that)."""
    gpu_check = _gpu_check_module()
    (tmp_path / gpu_check.ASSUMED_FILE).write_text("numba\nlazy-loader\nnumpy\n")
    reqs = gpu_check.rehearsal_requirements(tmp_path)
    names = {r.split("==")[0] for r in reqs}
    assert f"torch=={gpu_check.GPU_MACHINE_PINS['torch']}" in reqs
    assert f"numpy=={gpu_check.GPU_MACHINE_PINS['numpy']}" in reqs
    assert {"numba", "lazy-loader", "pytest", "onnxruntime"} <= names
    lacking = {gpu_check._canon(d) for d in gpu_check.GPU_MACHINE_LACKS}
    assert not names & lacking
    # every import the check needs comes from the environment or the folder
    needed = {gpu_check._canon(d) for d in gpu_check.NEEDED.values()}
    assert needed <= names | lacking
    with pytest.raises(gpu_check.InstallError, match="make gpu-wheels"):
        gpu_check.rehearse(tmp_path, python=sys.executable)
    # a folder with wheels, but no Python 3.12 to build the environment with
    (tmp_path / "skorch-1.4.0-py3-none-any.whl").write_bytes(b"")
    with pytest.raises(gpu_check.InstallError, match="did not run"):
        gpu_check.rehearse(tmp_path, python=str(tmp_path / "no-such-python"))
    if gpu_check._python_version(sys.executable) != "3.12":
        with pytest.raises(gpu_check.InstallError, match=r"needs a Python 3\.12"):
            gpu_check.rehearse(tmp_path, python=sys.executable)


def test_speed_hands_over_each_finished_section(monkeypatch):
    """speed.run reports the results after every section, so that main can
    write them and a run stopped by a time limit keeps what it finished."""
    speed = _speed_module(monkeypatch)
    seen = []
    results = speed.run(
        ["peak", "profile"],
        quick=True,
        modes=["fp32"],
        on_section=lambda r: seen.append(sorted(r)),
    )
    assert len(seen) == 2
    assert "matmul_peak_tflops" in seen[0] and "profile" not in seen[0]
    assert "profile" in seen[1] and "profile" in results


def test_gpu_check_keeps_the_speed_sections_a_timed_out_run_finished(
    monkeypatch, tmp_path
):
    gpu_check = _gpu_check_module()

    def timed_out(command, budget_s):
        out = Path(command[command.index("--out") + 1])
        doc = {"results": {"device": "cuda", "peak": {"32": 1.0}, "unfinished": True}}
        out.write_text(json.dumps(doc))
        return None, "speed: calls ..."

    monkeypatch.setattr(gpu_check, "_run_from_root", timed_out)
    rec = gpu_check.run_speed(tmp_path / "speed.json", budget_s=5)
    assert rec["returncode"] is None and "timed out" in rec["output_tail"]
    assert rec["results"]["unfinished"] is True
    assert rec["results"]["peak"] == {"32": 1.0}


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu_writes_one_json(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_check.py"),
            "--dry-run-on-cpu",
            "--threads",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = _read_results(out, "gpu_check")
    res = doc["results"]
    assert res["device"] == "cpu" and res["gpu"] is None
    counts = res["tests"]["counts"]
    assert set(counts) == {"passed"} and counts["passed"] >= 12
    speed = res["speed"]["results"]
    assert speed["device"] == "cpu"
    assert set(speed["matmul_peak_tflops"]) >= {"32"}
    for rec in speed["model"]["tiny"]["modes"].values():
        assert rec["train"]["peak_fraction"] > 0
    calls = speed["calls"]["tiny_auto"]
    for call in ("partial_fit", "predict_proba"):
        assert calls[call]["x_bare_median"] > 0
        assert calls[call]["x_baseline_fp32_median"] > 0
    assert set(speed["estimator"]["modes"]) == {"fp32", "auto"}


@pytest.mark.slow
def test_search_vs_grid_quick_resumes_and_summarises(tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "svg.jsonl"
    env = {"RFCNN_DATA_HOME": str(tmp_path / "data")}
    _run_quick("search_vs_grid.py", "--out", str(out), env=env)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1
    cell = rows[0]
    assert [g["rho"] for g in cell["grid"]] == [2, 4]
    assert cell["grid_best"] == max(g["map"] for g in cell["grid"])
    assert 0.0 <= cell["search_map"] <= 1.0 and cell["trials_run"] >= 1
    assert cell["search_wall_s"] > 0 and cell["T_s"] > 0
    # a second run finds the cell done and trains nothing
    proc = _run_quick("search_vs_grid.py", "--out", str(out), env=env)
    assert "already in" in proc.stdout and "grid rho=" not in proc.stdout
    assert len(out.read_text().splitlines()) == 1
    summary = tmp_path / "svg.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "search_vs_grid.py"),
            "--summary",
            "--out",
            str(out),
            "--json",
            str(summary),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    doc = _read_results(summary, "search_vs_grid")
    assert doc["results"]["mean"]["n_cells"] == 1
    assert "timgm6mb" in proc.stdout
