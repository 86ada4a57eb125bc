"""benchmarks/bench_gpu.py without a GPU: it says why and exits cleanly; its pieces work on a tiny model on the CPU."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from aerith.cli import app

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"


@pytest.fixture(scope="module")
def gpu_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_without_cuda_it_says_so_and_exits_0(gpu_bench, tmp_path):
    out = subprocess.run([sys.executable, str(PATH)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "no CUDA device" in out.stdout, out.stdout + out.stderr
    assert gpu_bench.run() == {"skipped": gpu_bench.skip_reason()}
    # aerith bench skips it and keeps the section it had
    (tmp_path / "bench_gpu.py").write_text(PATH.read_text())
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## gpu\n\nmeasured on an H100\n")
    r = CliRunner().invoke(app, ["bench", "--dir", str(tmp_path), "--only", "gpu"])
    assert r.exit_code == 0, r.output
    assert "skipping gpu: no CUDA device" in r.output and "measured on an H100" in results.read_text()


def test_configs_are_the_seed_and_the_llava_baseline(gpu_bench):
    c = gpu_bench.configs()
    assert c["pooler"].num_image_tokens == 144 and c["mlp"].num_image_tokens == 576
    assert c["pooler"].text_config.hidden_size == c["mlp"].text_config.hidden_size == 4096


def test_training_and_generation_pieces_run_on_a_tiny_model(gpu_bench):
    from aerith.infer.load import load_vlm

    model = load_vlm("aerith-tiny", device="cpu").model
    config = model.config
    inputs = gpu_bench.make_batch(config, 2, answer=False, device="cpu")
    assert inputs["input_ids"].shape == (2, 1 + config.num_image_tokens + gpu_bench.TEXT_TOKENS - 1)
    with torch.inference_mode():
        out = model.generate(**{k: v.float() if v.is_floating_point() else v for k, v in inputs.items()},
                             max_new_tokens=3, min_new_tokens=3, do_sample=False, pad_token_id=0, eos_token_id=2)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 3
    optimizer = gpu_bench.prepare_training(model)
    trained = [p for p in model.parameters() if p.requires_grad]
    assert trained and not any(p.requires_grad for p in model.clip_tower.parameters())
    batch = {k: v.float() if v.is_floating_point() else v for k, v in gpu_bench.make_batch(config, 2, answer=True, device="cpu").items()}
    assert (batch["labels"] != -100).sum() == 2 * gpu_bench.ANSWER_TOKENS
    before = [p.detach().clone() for p in trained]
    model(**batch).loss.backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, trained))


def test_table_reports_failures_beside_numbers(gpu_bench):
    result = {
        "device": "GPU X", "memory_gib": 80, "torch": "2", "cuda": "12", "new_tokens": 64,
        "rows": [
            {"what": "generate", "connector": "pooler", "base": "bf16", "batch": 16, "seconds": 2.0, "tokens_per_s": 512.0, "peak_memory_gib": 15.0},
            {"what": "generate", "connector": "mlp", "base": "bf16", "batch": 16, "seconds": 4.0, "tokens_per_s": 256.0, "peak_memory_gib": 20.0},
            {"what": "train", "connector": "mlp", "base": "4-bit", "batch": 8, "error": "out of memory"},
        ],
    }
    md = gpu_bench.to_markdown(result)
    assert "| generate | pooler | bf16 | 16 | 2.00 s | 512.0 tokens/s | 15.0 |" in md
    assert "failed: out of memory" in md and "generation tokens/s at batch 16: pooler 2.00x mlp" in md
