"""benchmarks/bench_train.py divides by the peak of the device `aerith sft` trains on, in the dtype it trains in."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_train.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_train", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_peak_is_the_training_devices(bench, monkeypatch):
    """Was: an fp32 matmul on the CPU always, while on a GPU machine the loop trains on the GPU under bf16
    autocast: the MFU divided GPU throughput by the CPU's peak."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.peak_device() == (torch.device("cpu"), torch.float32)
    assert bench.matmul_peak(n=64, repeats=2) > 0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert bench.peak_device() == (torch.device("cuda"), torch.bfloat16)


def test_the_table_names_the_device(bench):
    result = {"device": "GPU X", "peak_dtype": "bfloat16", "threads": 16, "matmul_peak_gflops": 900000.0,
              "matmul_peak_samples_gflops": [900000.0], "peak_rss_mib": 1.0,
              "rows": [{"model": "aerith-tiny", "batch": 8, "samples_per_s": 1.0, "gflop_per_sample": 1.0,
                        "achieved_gflops": 1.0, "mfu": 0.001}]}
    md = bench.to_markdown(result)
    assert md.startswith("Trained on: GPU X. bfloat16 matmul peak of that device measured in the same run: 900000.0 GFLOP/s")
