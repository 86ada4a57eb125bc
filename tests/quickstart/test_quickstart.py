"""A reduced quickstart (36 s of budget) end to end, and how it treats its output folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aerith.cli import app
from aerith.quickstart import pipeline
from aerith.quickstart.pipeline import MARKER, QuickstartSettings, prepare_out_dir, run_quickstart

ROW = re.compile(r"^\| (?P<task>[^|]+) \| (?P<metric>[^|]+) \| (?P<value>[^|]+) \| (?P<base>[^|]*) \| (?P<target>[^|]*) \| (?P<verdict>[^|]*) \|$")


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs") / "run"
    result = run_quickstart(QuickstartSettings(out=out, minutes=0.6, scenes=200, progress=False))
    return out, result


def test_every_output_exists(reduced):
    out, result = reduced
    report = out / "report"
    for name in ("report.md", "results.json", "loss_curves.png", "confusion_matrix.png", "grounding.png"):
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name
    assert (out / "init" / "config.json").is_file()
    for stage in ("align", "sft", "scst", "box_fit"):
        assert (out / stage / "checkpoint-final" / "config.json").is_file(), stage
        assert (out / stage / "metrics.jsonl").is_file(), stage
    for run in ("sft-cap", "final-cls", "final-vqa", "final-vg", "final-cap"):
        assert (out / "eval" / run / "predictions.jsonl").is_file(), run
    info = json.loads((out / MARKER).read_text())
    assert info["status"] == "finished"
    assert set(info["stage_seconds"]) == {"synth", "align", "sft", "eval", "scst", "box_fit", "report"}
    assert result.report == report / "report.md"


def test_the_final_model_grounds_with_its_fitted_box_head(reduced):
    out, _ = reduced
    fit = json.loads((out / "box_fit" / "box_fit.json").read_text())
    from aerith.data.registry import load_dataset

    expressions = len(load_dataset("synthrs", out / "data" / "synthrs", split="train", task="vg"))
    assert fit["config"]["flips"] == ["none", "horizontal", "vertical", "both"]
    assert fit["samples"] == 4 * expressions > 0
    assert fit["steps"] >= 20 and "val_acc@0.5" in fit["log"][-1]
    config = json.loads((out / "box_fit" / "checkpoint-final" / "config.json").read_text())
    assert config["box_head"] is True and "box head fitted" in config["training_state"]
    # the fit changed only the box head: the language model is the SCST model's
    from safetensors.torch import load_file

    fitted = load_file(out / "box_fit" / "checkpoint-final" / "model.safetensors")
    scst = load_file(out / "scst" / "checkpoint-final" / "model.safetensors")
    changed = {k.split(".")[0] for k in fitted if not (fitted[k] == scst[k]).all()}
    assert changed == {"box_head"}
    assert f"fitted alone after SCST for {fit['steps']} steps" in (out / "report" / "report.md").read_text()
    records = [json.loads(line) for line in (out / "eval" / "final-vg" / "predictions.jsonl").read_text().splitlines()]
    assert records and all(re.fullmatch(r"\[\d+, \d+, \d+, \d+\]", r["answer"]) for r in records)


def test_the_table_parses_and_matches_results_json(reduced):
    out, _ = reduced
    md = (out / "report" / "report.md").read_text()
    rows = [m.groupdict() for line in md.splitlines() if (m := ROW.match(line)) and not line.startswith("| task") and "---" not in line]
    rows = [r for r in rows if r["task"].strip() in ("classification", "VQA", "grounding", "captioning")]
    saved = json.loads((out / "report" / "results.json").read_text())
    assert len(rows) == len(saved["rows"]) >= 7
    for parsed, row in zip(rows, saved["rows"]):
        assert parsed["metric"].strip() == row["metric"]
        if row["value"] is None:  # undefined (a captioner that names no object has no hallucination rate)
            assert parsed["value"].strip() == "n/a"
        else:
            assert float(parsed["value"]) == pytest.approx(100 * row["value"], abs=0.051)
        assert parsed["verdict"].strip() in ({"yes", "**no**"} if row["pass"] is not None else {""})
    checked = {(r["task"], r["metric"]) for r in saved["rows"] if r["pass"] is not None}
    assert checked == {("classification", "accuracy"), ("VQA", "overall accuracy"), ("VQA", "count accuracy"),
                       ("grounding", "Acc@0.5"), ("grounding", "mean IoU"), ("captioning", "CIDEr-D"),
                       ("captioning", "SG-F1"), ("captioning", "hallucination rate"), ("captioning", "well-formed")}
    count = next(r for r in saved["rows"] if r["metric"] == "count accuracy")
    assert count["target"] == pytest.approx(count["baseline"] + 0.20)
    grounding = next(r for r in saved["rows"] if r["metric"] == "Acc@0.5")
    assert grounding["target"] >= 0.15
    distinct = next(r for r in saved["rows"] if r["metric"] == "distinct captions")
    for key, value in (("final-cap", distinct["value"]), ("sft-cap", distinct["baseline"])):
        answers = [json.loads(line)["answer"] for line in (out / "eval" / key / "predictions.jsonl").read_text().splitlines()]
        assert value == pytest.approx(len(set(answers)) / len(answers))
    hallucination = next(r for r in saved["rows"] if r["metric"] == "hallucination rate")
    defined = hallucination["value"] is not None and hallucination["baseline"] is not None
    assert hallucination["op"] == "<" and hallucination["pass"] == (defined and hallucination["value"] < hallucination["baseline"])
    # the baselines are computed from the run's own data: chance is 1/10 for SynthRS's ten classes
    chance = next(r for r in saved["rows"] if r["baseline_name"] == "chance (1/K)")
    assert chance["baseline"] == pytest.approx(0.1)
    for section in ("## Grounding", "## VQA per question type", "## Captions before and after SCST"):
        assert section in md


def test_report_examples_agree_with_the_predictions(reduced):
    from aerith.boxes import box_iou
    from aerith.data.synthrs.grammar import is_well_formed
    from aerith.eval.scene_graph import object_errors

    out, _ = reduced
    saved = json.loads((out / "report" / "results.json").read_text())
    md = (out / "report" / "report.md").read_text()
    records = [json.loads(line) for line in (out / "eval" / "final-vg" / "predictions.jsonl").read_text().splitlines()]
    assert len(saved["grounding"]) == 8
    for example, record in zip(saved["grounding"], records):
        boxes = record["parsed"] or []
        assert example["iou"] == pytest.approx(box_iou(boxes[0], record["reference"]) if boxes else 0.0)
        assert f"| {example['iou']:.2f} |" in md
    captions = {json.loads(line)["image"].rsplit("/", 1)[-1]: json.loads(line)
                for line in (out / "eval" / "final-cap" / "predictions.jsonl").read_text().splitlines()}
    for example in saved["captions"]:
        record = captions[example["image"]]
        after = example["scst"]
        assert after["caption"] == record["answer"]
        assert after["hallucinated"] == object_errors(record["answer"], record["reference"])["hallucinated"]
        assert after["well_formed"] == is_well_formed(record["answer"])


def test_scst_sees_the_recipes_reward_mix(reduced):
    """The reward logged at each SCST step is the recipe's weighted sum of the logged terms."""
    from aerith.quickstart.stages import load_recipe_rewards

    out, _ = reduced
    weights = load_recipe_rewards()
    assert weights["sg_f1"] > 0 and weights["hallucination"] > 0  # factual SCST, not CIDEr-D alone
    logged = [json.loads(line) for line in (out / "scst" / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in logged if "reward" in m]
    assert steps
    from aerith.rl.rewards import REWARDS

    for m in steps:  # every term of the table, penalties subtracted (repetition included)
        expected = sum((-1 if term.penalty else 1) * weights[name] * m[f"reward_{name}"] for name, term in REWARDS.items())
        assert m["reward"] == pytest.approx(expected, abs=1e-5)


def test_output_folder_rules(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty; pass --overwrite"):
        prepare_out_dir(busy, overwrite=False)
    with pytest.raises(FileExistsError, match="not a quickstart run"):
        prepare_out_dir(busy, overwrite=True)
    assert (busy / "thesis.tex").read_text() == "keep me"
    old = tmp_path / "old"
    old.mkdir()
    (old / MARKER).write_text("{}")
    (old / "stale.txt").write_text("x")
    prepare_out_dir(old, overwrite=True)
    assert old.is_dir() and not any(old.iterdir())
    result = CliRunner().invoke(app, ["quickstart", "--out", str(busy)])
    assert result.exit_code == 2 and "--overwrite" in result.output
    (old / MARKER).write_text("{}")
    (tmp_path / "link").symlink_to(old)  # a link to a run: not cleared through the link, said in one line
    linked = CliRunner().invoke(app, ["quickstart", "--out", str(tmp_path / "link"), "--overwrite"])
    assert linked.exit_code == 2 and linked.output.startswith("error:") and (old / MARKER).is_file(), linked.output


def test_the_current_folder_holding_an_earlier_run_is_cleared_in_place(tmp_path, monkeypatch):
    """`--out . --overwrite` deleted the earlier run, then failed ([Errno 22] Invalid argument: '.')."""
    (tmp_path / MARKER).write_text("{}")
    (tmp_path / "sft" / "checkpoint-final").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    prepare_out_dir(Path("."), overwrite=True)
    assert tmp_path.is_dir() and not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--minutes", "inf"], "error: --minutes must be a number > 0, got inf"),  # was an OverflowError traceback
        (["--minutes", "nan"], "error: --minutes must be a number > 0, got nan"),  # was "cannot convert float NaN to integer"
        (["--minutes", "0"], "error: --minutes must be a number > 0, got 0.0"),
        (["--scenes", "0"], "error: --scenes must be at least 50, got 0"),
    ],
)
def test_a_bad_budget_names_its_option(tmp_path, args, message):
    result = CliRunner().invoke(app, ["quickstart", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2 and result.output.strip() == message, result.output
    assert not (tmp_path / "run").exists()


def test_an_interrupted_quickstart_leaves_no_report(tmp_path, monkeypatch):
    real_train = pipeline._train

    def stop_at_sft(stage, *args, **kwargs):
        if stage == "sft":
            raise KeyboardInterrupt("stopped by the user")
        return real_train(stage, *args, **kwargs)

    monkeypatch.setattr(pipeline, "_train", stop_at_sft)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_quickstart(QuickstartSettings(out=out, minutes=0.2, scenes=60, progress=False))
    assert not (out / "report").exists()
    assert json.loads((out / MARKER).read_text())["status"] == "running"


def test_the_quickstart_recipes_are_typed_as_the_training_recipes_are(tmp_path):
    from aerith.quickstart.stages import load_box_fit_recipe, load_model_recipe

    path = tmp_path / "box_fit.yaml"
    path.write_text("steps: 30\nlr: 1e-3\n")  # YAML 1.1 reads 1e-3 as text: read as a number, as in the recipes
    assert load_box_fit_recipe(path).lr == 0.001
    for text, message in (("steps: 2.5\n", "steps: expected an integer, got 2.5"),
                          ("flips: none\n", "flips: expected a list of strings, got 'none'"),
                          ("flips: [sideways]\n", "sideways"), ("seed: 3\n", "unknown field")):  # fmt: skip
        path.write_text(text)
        with pytest.raises(ValueError, match=rf"box_fit.yaml: .*{re.escape(message)}"):
            load_box_fit_recipe(path)
    path = tmp_path / "model.yaml"
    for text, message in (("preset: aerith-tni\n", "unknown preset 'aerith-tni'"),
                          ("overrides: [box_head]\n", "overrides: expected a mapping"),
                          ("overrides: {box_head: 'yes'}\n", "overrides: AerithConfig.box_head must be bool")):  # fmt: skip
        path.write_text(text)
        with pytest.raises(ValueError, match=rf"model.yaml: {re.escape(message)}"):
            load_model_recipe(path)


def test_a_check_whose_value_is_undefined_after_training_fails():
    from aerith.quickstart.report import _row

    undefined = _row("captioning", "hallucination rate", None, 0.2, "the SFT model", 0.2, "<")
    assert undefined["pass"] is False  # the final captioner names no object: the rate did not fall, it vanished
    assert _row("captioning", "hallucination rate", 0.1, None, "the SFT model", None, "<")["pass"] is False
    assert _row("captioning", "hallucination rate", 0.1, 0.2, "the SFT model", 0.2, "<")["pass"] is True
