"""``aerith ablate``: the --quick grid end to end, the summary's arithmetic, and the grid's checks."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from aerith.ablate.grid import BASELINE, CIDER_ONLY, Variant, check_grid, full_grid, quick_grid
from aerith.ablate.runner import AblationSettings, check_continues, grid_for
from aerith.ablate.table import METRICS, summarise, table_markdown
from aerith.cli import app


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablate") / "quick"
    result = CliRunner().invoke(app, ["ablate", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_quick_grid_writes_its_table_plot_and_runs(quick):
    out, output = quick
    assert (out / "ablation.png").stat().st_size > 0
    md = (out / "ablation.md").read_text()
    saved = json.loads((out / "ablation.json").read_text())
    names = [v.name for v in quick_grid(CIDER_ONLY)]
    assert saved["variants"] == names and {r["variant"] for r in saved["runs"]} == set(names)
    for name in names[:2]:  # the model variants: one table row each, with every task's metrics
        row = next(line for line in md.splitlines() if line.startswith("| ") and f"| {name} |" in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        # a captioner of a few steps names no object: its hallucination rate is undefined, shown n/a
        assert len(cells) == 2 + 9 + 1 and all(re.fullmatch(r"\d+\.\d|n/a", c) for c in cells[2:11]), row
        assert all(re.fullmatch(r"\d+\.\d", c) for i, c in enumerate(cells[2:11]) if i != 7), row
    assert re.search(r"^\| CIDEr-D only \| [\d.]+ \| [\d.]+ \| ([\d.]+|n/a) \| [\d.]+ \| \d+ \|$", md, re.M)
    assert "Quick grid" in md and "rank training recipes and connectors, not pretrained encoders" in md
    from aerith.ablate.runner import definition

    grid = {v.name: v for v in grid_for(AblationSettings.quick_settings(out))}
    for r in saved["runs"]:
        assert (out / "runs").glob(f"*/seed-{r['seed']}/scores.json")
        assert r["definition"] == definition(grid[r["variant"]])  # what a later run checks before reusing it
    # the CIDEr-D-only variant's SCST saw CIDEr-D alone as its reward
    logged = [json.loads(line) for line in next((out / "runs").glob("scst-cider-d-only/seed-0/scst/metrics.jsonl"))
              .read_text().splitlines()]
    steps = [m for m in logged if "reward" in m]
    assert steps and all(m["reward"] == pytest.approx(m["reward_cider"]) for m in steps)
    assert any(m["reward_hallucination"] > 0 or m["reward_sg_f1"] > 0 for m in steps)  # computed, not weighed


def test_a_second_run_continues_without_retraining(quick):
    out, _ = quick
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/seed-0/scores.json")}
    result = CliRunner().invoke(app, ["ablate", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_a_run_stopped_part_way_is_started_again(quick):
    out, _ = quick
    stopped = out / "runs" / "scst-cider-d-only" / "seed-0"
    record = json.loads((stopped / "scores.json").read_text())
    (stopped / "scores.json").unlink()  # as if killed after training: its scst folder already holds a run
    (stopped / "eval").rename(stopped / "eval-before")
    others = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/seed-0/scores.json")}
    result = CliRunner().invoke(app, ["ablate", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{stopped} holds an unfinished run: starting it again" in result.output
    assert not (stopped / "eval-before").exists()  # the stopped run's folder was cleared, not merged into
    assert json.loads((stopped / "scores.json").read_text())["scores"] == record["scores"]  # same steps, same seeds
    assert {p: p.stat().st_mtime_ns for p in others} == others


def test_an_ablation_is_continued_only_with_its_own_budget(quick):
    out, _ = quick
    before = (out / "ablation.json").read_text()
    result = CliRunner().invoke(app, ["ablate", "--out", str(out), "--sft-steps", "1000"])  # the full grid's budget
    assert result.exit_code == 2, result.output
    assert "another budget" in result.output and "quick True there, False now" in result.output, result.output
    assert "sft_steps 4 there, 1000 now" in result.output, result.output
    assert (out / "ablation.json").read_text() == before  # nothing rewritten


def test_out_that_is_a_file_or_holds_a_broken_record_is_refused(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = CliRunner().invoke(app, ["ablate", "--quick", "--out", str(tmp_path / "file")])
    assert result.exit_code == 2 and "is a file, not a folder" in result.output, result.output
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "ablation.json").write_text("{\"settings\": ")
    result = CliRunner().invoke(app, ["ablate", "--quick", "--out", str(tmp_path / "broken")])
    assert result.exit_code == 2 and "ablation.json: not the record" in result.output, result.output
    assert not (tmp_path / "broken" / "runs").exists()


def test_summary_is_mean_and_sample_spread_over_seeds():
    variants = [Variant(BASELINE, "baseline"), Variant("SCST: x", "SCST reward", rewards=CIDER_ONLY, scst_from=BASELINE)]
    runs = [
        {"variant": BASELINE, "seed": s, "train_seconds": 10.0 * (s + 1), "scores": {"vg_acc50": v, "cider": 0.5}}
        for s, v in enumerate([0.1, 0.2, 0.3])
    ] + [{"variant": "SCST: x", "seed": 0, "train_seconds": 4.0, "scores": {"cider": 0.7}}]
    rows = summarise(runs, variants)
    mean, std, n = rows[0]["metrics"]["vg_acc50"]
    assert (mean, n) == (pytest.approx(0.2), 3) and std == pytest.approx(0.1)
    assert rows[0]["seconds"] == pytest.approx(20.0)
    assert rows[1]["metrics"]["cider"] == (pytest.approx(0.7), 0.0, 1)
    md = "\n".join(table_markdown(rows))
    assert "| baseline | quickstart recipe |" in md and "20.0 ± 10.0" in md
    assert "| none (the SFT model) | 50.0 ± 0.0 |" in md
    assert "| x (no run of seeds 1, 2) | 70.0 |" in md  # its mean is over fewer seeds than the baseline's


def test_cells_tell_undefined_partly_undefined_and_unmeasured_apart():
    variants = [Variant(BASELINE, "baseline")]
    halluc = [0.2, None, 0.4]  # a captioner that names no object on seed 1: its rate is undefined there
    runs = [
        {"variant": BASELINE, "seed": s, "train_seconds": 1.0,
         "scores": {"hallucination": h, "cider": 0.5, "sg_f1": None}}
        for s, h in enumerate(halluc)
    ]
    rows = summarise(runs, variants)
    assert rows[0]["metrics"]["sg_f1"] is None and "vg_acc50" not in rows[0]["metrics"]
    line = next(l for l in table_markdown(rows) if l.startswith("| baseline"))
    cells = dict(zip(["factor", "variant", *METRICS.values(), "train s"], [c.strip() for c in line.strip("|").split("|")]))
    assert cells["halluc."] == "30.0 ± 14.1 (2 of 3 seeds)"
    assert cells["CIDEr-D"] == "50.0 ± 0.0"
    assert cells["SG-F1"] == "n/a" and cells["VG Acc@0.5"] == "–"


def test_grid_checks():
    full = full_grid(CIDER_ONLY, "pooler", 36)
    check_grid(full)
    assert {v.factor for v in full} == {
        "baseline", "connector", "pooler locality prior", "fusion", "number of queries", "coordinate-token init", "SCST reward"}
    # with an MLP recipe the pooler's own factors are measured on the pooler
    mlp = full_grid(CIDER_ONLY, "mlp", 36)
    assert next(v for v in mlp if v.factor == "pooler locality prior").model["connector"] == "pooler"
    with pytest.raises(ValueError, match="not an earlier variant"):
        check_grid([Variant("a", "x", rewards=CIDER_ONLY, scst_from="b")])
    with pytest.raises(ValueError, match="two variants"):
        check_grid([Variant("a", "x"), Variant("a", "y")])
    with pytest.raises(ValueError, match="cannot change the model"):
        Variant("a", "x", model={"fusion": "clip"}, rewards=CIDER_ONLY, scst_from="b")
    with pytest.raises(ValueError, match="unknown variant"):
        grid_for(AblationSettings(only=("no such variant",)))
    narrowed = grid_for(AblationSettings(only=("SCST: CIDEr-D only",)))
    assert [v.name for v in narrowed] == [BASELINE, "SCST: CIDEr-D only"]


def test_bad_settings_exit_2(tmp_path):
    for args in (["--seeds", "0,x"], ["--seeds", "1,1"], ["--sft-steps", "0"], ["--only", "nope"]):
        result = CliRunner().invoke(app, ["ablate", "--out", str(tmp_path / "a"), *args])
        assert result.exit_code == 2 and "error:" in result.output, (args, result.output)
    quick = CliRunner().invoke(app, ["ablate", "--quick", "--out", str(tmp_path / "q"), "--sft-steps", "9", "--seeds", "1"])
    assert quick.exit_code == 2 and "--quick has its own budget; drop --seeds, --sft-steps" in quick.output, quick.output
    unknown = CliRunner().invoke(app, ["ablate", "--quick", "--out", str(tmp_path / "q"), "--only", "nope"])
    assert unknown.exit_code == 2 and "unknown variant" in unknown.output, unknown.output  # --only reaches the quick grid
    assert AblationSettings.quick_settings(tmp_path, eval_limit=3).eval_limit == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sft-steps", "0"], "error: --sft-steps must be >= 1, got 0"),
        (["--align-steps", "-1"], "error: --align-steps must be >= 1, got -1"),
        (["--box-fit-steps", "0"], "error: --box-fit-steps must be >= 1, got 0"),
        (["--scenes", "3"], "error: --scenes must be >= 50, got 3"),
        (["--eval-limit", "0"], "error: --eval-limit must be >= 1, got 0"),
        (["--seeds", "0,-1"], "error: --seeds must be >= 0, got [0, -1]"),  # was SynthRS's 'seed must be non-negative'
    ],
)
def test_a_bad_budget_names_its_option_and_value(tmp_path, args, message):
    """Was: 'align_steps, sft_steps, scst_steps and box_fit_steps must be >= 1' for any one of them, no value."""
    result = CliRunner().invoke(app, ["ablate", "--out", str(tmp_path / "a"), *args])
    assert result.exit_code == 2 and result.output.strip() == message, result.output


def test_a_folder_of_other_files_is_never_an_ablation_out(tmp_path):
    """A dataset or project folder given as --out got data/, runs/ and ablation.* written into it."""
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("keep me")
    result = CliRunner().invoke(app, ["ablate", "--quick", "--out", str(busy)])
    assert result.exit_code == 2 and "holds no ablation (found ['thesis.tex'])" in result.output, result.output
    assert [p.name for p in busy.iterdir()] == ["thesis.tex"]
    stopped = tmp_path / "stopped"  # an ablation stopped before its first run finished: data/ and runs/ only
    (stopped / "data").mkdir(parents=True)
    (stopped / "runs").mkdir()
    check_continues(stopped, {})


def _fake_runs(monkeypatch):
    """run_ablation with instant runs: a variant's CIDEr-D is 10 x (seed + 1) %, the SynthRS set an empty marker."""
    import aerith.ablate.runner as runner
    import aerith.ablate.table as table
    import aerith.data.synthrs as synthrs
    from aerith.atomic import atomic_write_text

    def generate(root, n, size, seed, overwrite=False):
        root.mkdir(parents=True, exist_ok=True)
        (root / "scene_graphs.json").write_text("{}")

    def run_variant(variant, seed, settings, data_root, echo=print):
        from transformers.utils import logging as hf_logging

        assert not hf_logging.is_progress_bar_enabled()  # transformers' per-load bars would bury the results
        path = settings.out / "runs" / runner.slug(variant.name) / f"seed-{seed}" / "scores.json"
        if path.is_file():
            return runner.read_record(path, variant.name, seed)
        record = {"variant": variant.name, "factor": variant.factor, "seed": seed, "steps": {}, "train_seconds": 1.0,
                  "seconds": 1.0, "scores": {"cider": 0.1 * (seed + 1)}}
        atomic_write_text(path, json.dumps(record))
        return record

    monkeypatch.setattr(synthrs, "generate", generate)
    monkeypatch.setattr(runner, "run_variant", run_variant)
    monkeypatch.setattr(table, "plot_png", lambda rows: b"plot")  # the --quick test draws the real one


def test_a_later_only_or_seeds_run_adds_to_the_table_and_record(tmp_path, monkeypatch):
    """Was: `--only X` (or other --seeds) into an ablation folder rewrote ablation.json and ablation.md with its own
    runs alone, dropping every earlier variant and seed, though the README says they may be added."""
    from aerith.ablate.runner import run_ablation

    _fake_runs(monkeypatch)
    out = tmp_path / "abl"
    budget = dict(out=out, scenes=50, align_steps=1, sft_steps=1, scst_steps=1, box_fit_steps=1)
    run_ablation(AblationSettings(seeds=(0, 1), **budget), echo=lambda m: None)
    grid = [v.name for v in grid_for(AblationSettings(**budget))]
    run_ablation(AblationSettings(seeds=(2,), only=("connector: mlp",), **budget), echo=lambda m: None)
    saved = json.loads((out / "ablation.json").read_text())
    assert saved["variants"] == grid
    assert {(r["variant"], r["seed"]) for r in saved["runs"]} == {(n, s) for n in grid for s in (0, 1)} | {("connector: mlp", 2)}
    md = (out / "ablation.md").read_text()
    assert "over seeds 0, 1, 2;" in md
    assert "| connector | connector: mlp | – | – | – | – | – | 20.0 ± 10.0 |" in md  # seeds 0, 1 and 2
    assert "| baseline | quickstart recipe (no run of seed 2) | – | – | – | – | – | 15.0 ± 7.1 |" in md
    assert "| none (the SFT model) (no run of seed 2) | 15.0 ± 7.1 |" in md
    assert "| CIDEr-D only (no run of seed 2) | 15.0 ± 7.1 |" in md
    # a scores.json that is not the run's own is named, not summarised
    wrong = out / "runs" / "fusion-concat" / "seed-1" / "scores.json"
    wrong.write_text(json.dumps({"variant": "fusion: concat", "seed": 0, "scores": {}}))
    with pytest.raises(ValueError, match=r"fusion-concat/seed-1/scores.json: the scores of variant 'fusion: concat' seed 0"):
        run_ablation(AblationSettings(seeds=(2,), only=("connector: mlp",), **budget), echo=lambda m: None)


def test_each_scst_row_adds_only_the_terms_it_names():
    """Was: '+ SG-F1' weighed SG-F1 1.0 and the recipe's row 0.5, so the penalties row also halved SG-F1; and
    terms left out took the reward table's defaults instead of 0."""
    from aerith.quickstart.stages import load_recipe_rewards
    from aerith.rl.rewards import REWARDS

    factual = load_recipe_rewards()
    assert factual["sg_f1"] > 0 and any(factual[n] > 0 for n, t in REWARDS.items() if t.penalty)
    cider, sg, full = (v.rewards for v in full_grid(factual, "pooler", 36) if v.factor == "SCST reward")
    assert all(set(r) == set(REWARDS) for r in (cider, sg, full))  # every term weighed explicitly
    assert cider == {n: factual["cider"] if n == "cider" else 0.0 for n in REWARDS}
    assert {n for n in REWARDS if sg[n] != cider[n]} == {"sg_f1"} and sg["sg_f1"] == factual["sg_f1"]
    assert {n for n in REWARDS if full[n] != sg[n]} == {n for n, t in REWARDS.items() if t.penalty and factual[n] > 0}
    assert full == factual
    assert quick_grid(factual)[-1].rewards == cider


def test_a_finished_run_of_another_definition_of_its_variant_is_not_reused(tmp_path):
    """A run made before the grid changed ('+ SG-F1' at weight 1.0, now the recipe's 0.5) is refused, not mixed in."""
    from aerith.ablate.grid import Variant
    from aerith.ablate.runner import definition, read_record

    now = Variant("SCST: + SG-F1", "SCST reward", rewards={"cider": 1.0, "sg_f1": 0.5}, scst_from="quickstart recipe")
    before = Variant("SCST: + SG-F1", "SCST reward", rewards={"cider": 1.0, "sg_f1": 1.0}, scst_from="quickstart recipe")
    path = tmp_path / "scores.json"
    record = {"variant": now.name, "seed": 0, "scores": {"cider": 0.4}}
    path.write_text(json.dumps({**record, "definition": definition(before)}))
    with pytest.raises(ValueError, match=r"scores.json: this run of 'SCST: \+ SG-F1' was made with another definition .*"
                                         r"rewards: run \{'cider': 1.0, 'sg_f1': 1.0\}, grid now \{'cider': 1.0, 'sg_f1': 0.5\}"):
        read_record(path, now.name, 0, definition(now))
    path.write_text(json.dumps({**record, "definition": definition(now)}))
    assert read_record(path, now.name, 0, definition(now))["scores"] == {"cider": 0.4}
    path.write_text(json.dumps(record))  # written before runs kept their definition: taken as it is
    assert read_record(path, now.name, 0, definition(now))["scores"] == {"cider": 0.4}
