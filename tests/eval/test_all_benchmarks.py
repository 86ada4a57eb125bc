"""Every registry entry loads its fake data, builds prompts, and (but captions, scored in test_evaluate) runs and scores."""

from __future__ import annotations

import importlib
import json

import pytest

from aerith.eval.benchmarks import BENCHMARKS
from aerith.eval.runner import evaluate, write_prompts


class Echo:
    """A stand-in model: a box for grounding prompts, 'yes' otherwise; remembers image sizes."""

    name = "echo"

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def generate(self, images, prompts, *, batch_size=16, **kwargs):
        self.sizes += [im.size for im in images]
        return ["[100, 100, 500, 500]" if p.startswith("[VG]") else "yes" for p in prompts]


@pytest.fixture(scope="module")
def synthrs_root(tmp_path_factory):
    from aerith.data.synthrs import generate

    root = tmp_path_factory.mktemp("synthrs") / "synthrs"
    generate(root, n=20, size=64, seed=0)
    return root


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_runs_on_its_fake(name, tmp_path, synthrs_root):
    bench = BENCHMARKS[name]
    if bench.dataset == "synthrs":
        root = synthrs_root
    else:
        module = importlib.import_module(f"tests.fakes.{bench.dataset.replace('-', '_')}.data")
        root = module.write_fake(tmp_path / "data")
    n = write_prompts(bench, root, tmp_path / "prompts.jsonl")
    prompts = [json.loads(line) for line in (tmp_path / "prompts.jsonl").read_text().splitlines()]
    assert n == len(prompts) > 0
    token = {"cls": "[CLS]", "vqa": "[VQA]", "cap": "[CAP]", "vg": "[VG]"}[bench.task]
    assert all(p["prompt"].startswith(token) for p in prompts)
    assert len({p["id"] for p in prompts}) == n
    if bench.task == "cap":
        return
    model = Echo()
    result = evaluate(model, bench, root, tmp_path / "run", progress=False)
    assert result["counts"]["samples"] == n and result["counts"]["missing"] == 0
    if bench.crop_to_box:  # fMoW: the labelled box is classified, not the whole image
        assert all(w < 24 and h < 20 for w, h in model.sizes)
