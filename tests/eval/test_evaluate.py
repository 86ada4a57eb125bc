"""Tiny-model evaluation over fake data: every output is written, runs resume, suites name what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aerith.cli import app
from aerith.eval.report import RANDOM_WEIGHTS_LINE
from aerith.eval.runner import PREDICTIONS, evaluate, read_predictions

GEN = {"max_new_tokens": 3, "min_new_tokens": 3}


class Counting:
    """Wraps a model and records every prompt it is asked."""

    def __init__(self, model, fail_on_call: int | None = None) -> None:
        self.model = model
        self.name = getattr(model, "name", "model")
        self.is_random_init = getattr(model, "is_random_init", None)
        self.calls = 0
        self.prompts: list[str] = []
        self.fail_on_call = fail_on_call

    def generate(self, images, prompts, *, batch_size=16, **kwargs):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt("interrupted")
        self.prompts += list(prompts)
        return self.model.generate(images, prompts, batch_size=batch_size, **kwargs)


@pytest.mark.parametrize(
    ("bench", "split", "limit", "figure"),
    [("aid", None, 4, "confusion_matrix.png"), ("rsvqa-lr", None, 4, None), ("dior-rsvg", "train", 3, "grounding.png"), ("rsicd", None, 2, None)],
)
def test_tiny_model_writes_all_outputs(tiny, roots, tmp_path, bench, split, limit, figure):
    out = tmp_path / bench
    result = evaluate(tiny, bench, roots[bench], out, split=split, limit=limit, batch_size=2, generate_kwargs=GEN, progress=False)
    expected = {"results.md", "results.json", PREDICTIONS, "run.json"} | ({figure} if figure else set())
    assert expected <= {p.name for p in out.iterdir()}
    assert result["counts"]["samples"] == limit and result["counts"]["missing"] == 0
    assert result["random_weights"] is True
    assert result["generation"]["generated"] == limit and result["generation"]["images_per_s"] > 0
    records = [json.loads(line) for line in (out / PREDICTIONS).read_text().splitlines()]
    assert len(records) == limit and all(r["prompt"].startswith("[") for r in records)
    md = (out / "results.md").read_text()
    assert RANDOM_WEIGHTS_LINE in md and f"| {bench} |" in md and "## Protocols" in md
    saved = json.loads((out / "results.json").read_text())
    assert saved["scores"]["n"] == limit


def test_resume_skips_finished_samples(tiny, roots, tmp_path):
    out = tmp_path / "run"
    model = Counting(tiny)
    evaluate(model, "aid", roots["aid"], out, limit=6, batch_size=2, generate_kwargs=GEN, progress=False)
    assert model.calls == 3 and len(model.prompts) == 6

    # an interrupted run: the last record lost and the one before it half-written
    lines = (out / PREDICTIONS).read_text().splitlines(keepends=True)
    (out / PREDICTIONS).write_text("".join(lines[:4]) + lines[4][:25])
    again = Counting(tiny)
    result = evaluate(again, "aid", roots["aid"], out, limit=6, batch_size=2, generate_kwargs=GEN, progress=False)
    assert again.calls == 1 and len(again.prompts) == 2
    assert result["generation"] == {**result["generation"], "generated": 2, "resumed": 4}
    done = read_predictions(out / PREDICTIONS)
    assert len(done.answers) == 6 and done.records == 6 and not done.bad_lines and done.partial_tail is None

    third = Counting(tiny)
    evaluate(third, "aid", roots["aid"], out, limit=6, batch_size=2, generate_kwargs=GEN, progress=False)
    assert third.calls == 0

    with pytest.raises(ValueError, match="choose another --out"):
        evaluate(third, "ucm", roots["ucm"], out, limit=2, generate_kwargs=GEN, progress=False)


def test_another_model_of_the_same_name_does_not_resume_a_folder(tiny, roots, tmp_path):
    from aerith.infer.vlm import AerithVLM

    out = tmp_path / "run"
    evaluate(tiny, "aid", roots["aid"], out, limit=2, generate_kwargs=GEN, progress=False)
    other = AerithVLM.from_preset("aerith-tiny", seed=1, device="cpu")
    assert other.name == tiny.name
    with pytest.raises(ValueError, match=r"model files: weights in memory \(sha256 \w+\) then, weights in memory"):
        evaluate(other, "aid", roots["aid"], out, limit=2, generate_kwargs=GEN, progress=False)
    assert evaluate(tiny, "aid", roots["aid"], out, limit=2, generate_kwargs=GEN, progress=False)["generation"]["resumed"] == 2


def test_interrupted_batches_are_kept(tiny, roots, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        evaluate(Counting(tiny, fail_on_call=2), "aid", roots["aid"], out, limit=4, batch_size=2, generate_kwargs=GEN, progress=False)
    assert len(read_predictions(out / PREDICTIONS).answers) == 2
    model = Counting(tiny)
    result = evaluate(model, "aid", roots["aid"], out, limit=4, batch_size=2, generate_kwargs=GEN, progress=False)
    assert model.calls == 1 and result["counts"]["answered"] == 4


def test_suite_runs_what_has_a_root_and_names_the_rest(roots, tmp_path):
    out = tmp_path / "suite"
    result = CliRunner().invoke(app, [
        "eval", "aerith-tiny", "--suite", "seed", "--root", f"ucm={roots['ucm']}", "--out", str(out),
        "--limit", "2", "--batch-size", "2", "--max-new-tokens", "2", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    for name in ("aid", "whu-rs19", "eurosat", "nwpu-resisc45", "rsvg", "dior-rsvg", "rsvqa-lr"):
        assert f"not run: {name}" in result.output
    md = (out / "results.md").read_text()
    assert "| ucm | accuracy |" in md and "86.3, TEOChat" in md and RANDOM_WEIGHTS_LINE in md
    assert "Not run, no root given: aid (dataset aid), whu-rs19" in md
    assert (out / "ucm" / "confusion_matrix.png").is_file()
    summary = json.loads((out / "results.json").read_text())
    assert set(summary["missing"]) == {"aid", "whu-rs19", "eurosat", "nwpu-resisc45", "rsvg", "dior-rsvg", "rsvqa-lr"}


def test_cli_rejects_bad_combinations(tmp_path):
    runner = CliRunner()
    both = runner.invoke(app, ["eval", "aerith-tiny", "--benchmark", "aid", "--suite", "seed", "--out", str(tmp_path)])
    assert both.exit_code == 2 and "exactly one" in both.output
    bare = runner.invoke(app, ["eval", "aerith-tiny", "--suite", "seed", "--root", str(tmp_path), "--out", str(tmp_path)])
    assert bare.exit_code == 2 and "NAME=DIR" in bare.output
    listed = runner.invoke(app, ["eval", "--list"])
    assert listed.exit_code == 0 and "synthrs-vg" in listed.output and "suite seed" in listed.output


def test_options_of_another_mode_are_refused_not_ignored(roots, tmp_path):
    runner = CliRunner()
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"id": "x", "answer": "forest"}\n')
    scored = runner.invoke(app, ["eval", "--benchmark", "aid", "--root", str(roots["aid"]), "--predictions", str(answers),
                                 "--max-new-tokens", "8", "--overwrite"])
    assert scored.exit_code == 2 and "--max-new-tokens, --overwrite apply to running a model, not to --predictions" in scored.output
    run = runner.invoke(app, ["eval", "aerith-tiny", "--benchmark", "aid", "--root", str(roots["aid"]), "--out", str(tmp_path / "r"),
                              "--box-format", "geochat"])
    assert run.exit_code == 2 and "--box-format applies to scoring --predictions" in run.output


def test_predictions_do_not_replace_a_model_runs_results(tiny, roots, tmp_path):
    out = tmp_path / "run"
    evaluate(tiny, "aid", roots["aid"], out, limit=2, generate_kwargs=GEN, progress=False)
    before = (out / "results.json").read_bytes()
    answers = tmp_path / "other.jsonl"
    answers.write_text("".join(f'{{"id": "{json.loads(line)["id"]}", "answer": "forest"}}\n'
                               for line in (out / PREDICTIONS).read_text().splitlines()))
    refused = CliRunner().invoke(app, ["eval", "--benchmark", "aid", "--root", str(roots["aid"]), "--predictions", str(answers),
                                       "--out", str(out), "--limit", "2"])
    assert refused.exit_code == 2 and "holds a model's evaluation run (run.json)" in refused.output
    assert (out / "results.json").read_bytes() == before
