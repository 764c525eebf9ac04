"""Benchmark scripts run end to end (smoke tests; figures are not asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_accuracy_quick_runs_and_writes_valid_json(tmp_path):
    out = tmp_path / "accuracy_quick.json"
    env = {**os.environ, "RFCNN_DATA_HOME": str(tmp_path / "data")}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "accuracy.py"),
            "--quick",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "accuracy_quick"
    assert {"cpu", "vector_extensions", "torch"} <= set(doc["machine"])
    names = [r["name"] for r in doc["results"]["rows"]]
    assert any(n.startswith("MFCC") for n in names)
    assert any(n.startswith("CP-ResNet rho=") for n in names)
    assert any("Optuna" in n for n in names)
    for row in doc["results"]["rows"]:
        assert 0.0 <= row["summary"]["test"]["map"]["mean"] <= 1.0
    assert out.with_name("accuracy_quick_rf.png").stat().st_size > 0


@pytest.mark.slow
def test_bench_onnx_quick_runs_and_writes_valid_json(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "bench_onnx_quick.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_onnx.py"),
            "--quick",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "bench_onnx"
    assert {"cpu", "vector_extensions", "torch"} <= set(doc["machine"])
    methods = doc["results"]["configs"]["tiny"]["methods"]
    assert set(methods) == {"torch_fp32", "torch_bf16", "onnxruntime"}
    for r in methods.values():
        assert r["samples_per_s_best"] > 0
    assert methods["torch_fp32"]["ratio_best_vs_torch_fp32"] == 1.0
    assert methods["onnxruntime"]["max_abs_diff_vs_torch_fp32"] < 1e-4


@pytest.mark.slow
def test_bench_store_quick_runs_and_writes_valid_json(tmp_path):
    out = tmp_path / "bench_store_quick.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_store.py"),
            "--quick",
            "--out",
            str(out),
            "--tmp",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "bench_store"
    assert {"cpu", "vector_extensions", "torch"} <= set(doc["machine"])
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
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_dask.py"),
            "--quick",
            "--out",
            str(out),
            "--tmp",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "bench_dask_quick"
    assert {"cpu", "vector_extensions", "torch"} <= set(doc["machine"])
    res = doc["results"]
    assert res["workers"] == 2 and res["cluster_start_s"] > 0
    assert res["search"]["same_best_params_and_scores"]
    assert res["front_end"]["bit_identical"] and res["front_end"]["store_bit_identical"]
    assert set(res["ratios"]) >= {
        "search_local_over_dask_warm",
        "front_end_local_over_dask",
    }
    assert not [p for p in tmp_path.glob("bench_dask_*") if p.is_dir()]  # scratch
