"""A run folder is resumed only by the run that made it; per-process answer files merge into one, in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aerith.cli import app
from aerith.eval.distributed import Processes
from aerith.eval.fingerprint import differences, folder_fingerprint, model_fingerprint
from aerith.eval.runner import PREDICTIONS, RUN_INFO, evaluate, merge_predictions, read_predictions
from tests.eval.test_evaluate import GEN, Counting

FP_A = {"path": "/models/a", "files": 2, "sha256": "a" * 64}
FP_B = {"path": "/models/a", "files": 2, "sha256": "b" * 64}


def _run(model, roots, out, **kwargs):
    options = dict(limit=5, batch_size=2, generate_kwargs=GEN, progress=False, model_name="m", model_fingerprint=FP_A)
    return evaluate(model, "aid", roots["aid"], out, **{**options, **kwargs})


def test_other_weights_or_settings_are_refused_naming_what_differs(tiny, roots, tmp_path):
    out = tmp_path / "run"
    _run(Counting(tiny), roots, out)
    before = (out / PREDICTIONS).read_bytes()

    with pytest.raises(ValueError, match=r"model files: /models/a \(model files sha256 aaaaaaaaaaaa\) then, "
                                         r"/models/a \(model files sha256 bbbbbbbbbbbb\) now.*--overwrite"):
        _run(Counting(tiny), roots, out, model_fingerprint=FP_B)
    with pytest.raises(ValueError, match=r"generation settings: max_new_tokens 3 -> 4, min_new_tokens 3 -> None"):
        _run(Counting(tiny), roots, out, generate_kwargs={"max_new_tokens": 4})
    with pytest.raises(ValueError, match=r"model name: 'm' then, 'other' now"):
        _run(Counting(tiny), roots, out, model_name="other")
    assert (out / PREDICTIONS).read_bytes() == before  # a refusal changes nothing

    # the batch size only groups the answers: the same run resumes under another one
    again = Counting(tiny)
    _run(again, roots, out, batch_size=4)
    assert again.calls == 0

    # --overwrite starts over: every sample asked again, the new fingerprint recorded
    fresh = Counting(tiny)
    result = _run(fresh, roots, out, model_fingerprint=FP_B, overwrite=True)
    assert len(fresh.prompts) == 5 and result["generation"]["resumed"] == 0
    assert json.loads((out / RUN_INFO).read_text())["model_fingerprint"] == FP_B
    assert read_predictions(out / PREDICTIONS).records == 5


def test_answers_asked_with_another_prompt_or_of_unknown_origin_are_refused(tiny, roots, tmp_path):
    out = tmp_path / "run"
    _run(Counting(tiny), roots, out)
    lines = (out / PREDICTIONS).read_text().splitlines()
    record = json.loads(lines[1])
    record["prompt"] = "[CLS] an older phrasing"
    (out / PREDICTIONS).write_text("\n".join([lines[0], json.dumps(record), *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match=rf"1 answer\(s\) there were asked with another prompt, e.g. {record['id']}"):
        _run(Counting(tiny), roots, out)

    (out / RUN_INFO).unlink()
    with pytest.raises(ValueError, match="holds answers but no run.json"):
        _run(Counting(tiny), roots, out)
    (out / RUN_INFO).write_text("{not json")
    with pytest.raises(ValueError, match="run.json: unreadable"):
        _run(Counting(tiny), roots, out)


def test_a_folder_without_answers_takes_any_run(tiny, roots, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / RUN_INFO).write_text(json.dumps({"benchmark": "ucm", "split": "test", "model": "x"}))
    (out / PREDICTIONS).write_text("")
    result = _run(Counting(tiny), roots, out)
    assert result["counts"]["answered"] == 5


def test_one_process_resumes_what_several_left_and_merges_in_order(tiny, roots, tmp_path):
    straight = tmp_path / "straight"
    _run(Counting(tiny), roots, straight)
    reference = (straight / PREDICTIONS).read_bytes()
    lines = reference.splitlines(keepends=True)
    assert len(lines) == 5

    # what two processes leave when interrupted: batches 0 and 2 on rank 0 (the last one cut mid-line),
    # batch 1 on rank 1; a stale empty file of a third process from an earlier run with three
    out = tmp_path / "resumed"
    out.mkdir()
    (out / RUN_INFO).write_bytes((straight / RUN_INFO).read_bytes())
    (out / "predictions.rank0.jsonl").write_bytes(lines[0] + lines[1] + lines[4][:30])
    (out / "predictions.rank1.jsonl").write_bytes(lines[2] + lines[3])
    (out / "predictions.rank2.jsonl").write_bytes(b"")
    model = Counting(tiny)
    result = _run(model, roots, out)
    assert model.calls == 1 and len(model.prompts) == 1  # only the sample cut mid-line is asked again
    assert result["generation"]["generated"] == 1 and result["generation"]["resumed"] == 4
    assert (out / PREDICTIONS).read_bytes() == reference
    assert sorted(p.name for p in out.glob("predictions*")) == [PREDICTIONS]


def test_merge_keeps_everything_but_interrupted_writes(tmp_path):
    from aerith.eval.runner import EvalItem

    items = [EvalItem(f"b/test/{i}", i, None) for i in range(4)]  # merging reads only the ids

    def rec(i: int, answer: str = "x") -> bytes:
        return json.dumps({"id": f"b/test/{i}", "answer": answer}).encode()

    (tmp_path / PREDICTIONS).write_bytes(rec(2) + b"\n" + b"not a record\n" + rec(9, "extra") + b"\n" + b'{"id": "b/te')
    (tmp_path / "predictions.rank0.jsonl").write_bytes(rec(0) + b"\n" + rec(3, "old") + b"\n")
    (tmp_path / "predictions.rank1.jsonl").write_bytes(rec(1) + b"\n" + rec(3, "new"))  # complete, without newline
    (tmp_path / "predictions.rankx.jsonl").write_bytes(b"not ours")
    assert merge_predictions(tmp_path, items)
    merged = (tmp_path / PREDICTIONS).read_bytes().splitlines()
    assert merged == [rec(0), rec(1), rec(2), rec(3, "new"), rec(9, "extra"), b"not a record"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [PREDICTIONS, "predictions.rankx.jsonl"]
    assert not merge_predictions(tmp_path, items)  # nothing left to merge


def test_batches_are_dealt_round_robin_and_single_process_collectives_are_plain():
    batches = [[0, 1], [2, 3], [4, 5], [6]]
    assert Processes().shard(batches) == batches
    assert Processes().on_main(lambda: 7) == 7
    assert Processes().gather(3) == [3]
    with pytest.raises(KeyError):
        Processes().gather(3, KeyError("x"))
    with pytest.raises(ValueError, match="not a valid rank"):
        Processes(rank=2, world=2)
    with pytest.raises(ValueError, match="PartialState"):
        Processes(rank=0, world=2)


def test_folder_fingerprint_follows_the_weights_not_the_path(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "aerith"}')
    (model / "model.safetensors").write_bytes(b"\0" * 100)
    (model / "README.md").write_text("notes")
    first = folder_fingerprint(model)
    assert first["files"] == 2 and first["path"] == str(model.resolve())
    (model / "README.md").write_text("other notes")  # not a weight file
    assert folder_fingerprint(model) == first
    (model / "model.safetensors").write_bytes(b"\0" * 99 + b"\1")
    changed = folder_fingerprint(model)
    assert changed["sha256"] != first["sha256"]
    assert differences({"model_fingerprint": first}, {"model_fingerprint": changed}) == [
        f"model files: {model.resolve()} (model files sha256 {first['sha256'][:12]}) then, "
        f"{model.resolve()} (model files sha256 {changed['sha256'][:12]}) now"
    ]
    # a run folder is fingerprinted through the checkpoint it loads
    run = tmp_path / "run"
    (run / "checkpoint-final").mkdir(parents=True)
    for f in model.iterdir():
        (run / "checkpoint-final" / f.name).write_bytes(f.read_bytes())
    assert model_fingerprint(run)["sha256"] == changed["sha256"]
    assert model_fingerprint("aerith-tiny", seed=3) == {"preset": "aerith-tiny", "seed": 3}
    # decoding defaults, tokens and the template change answers as the weights do
    for name, text in (("generation_config.json", '{"repetition_penalty": 1.3}'), ("tokenizer.json", "{}"),
                       ("chat_template.jinja", "{{ messages }}"), ("trainer_state.json", '{"step": 9}')):  # fmt: skip
        before = folder_fingerprint(model)
        (model / name).write_text(text)
        assert (folder_fingerprint(model) == before) == (name == "trainer_state.json"), name


def _cli(args: list[str]):
    return CliRunner().invoke(app, ["eval", *args, "--no-progress"])


def test_cli_refuses_another_seed_before_loading_and_overwrite_starts_over(roots, tmp_path, monkeypatch):
    out = tmp_path / "run"
    base = ["--benchmark", "aid", "--root", str(roots["aid"]), "--out", str(out), "--limit", "2", "--batch-size", "2",
            "--max-new-tokens", "2"]
    first = _cli(["aerith-tiny", *base])
    assert first.exit_code == 0, first.output
    import aerith.infer.load

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the run folder was checked")

    monkeypatch.setattr(aerith.infer.load, "load_vlm", no_loading)
    refused = _cli(["aerith-tiny", *base, "--seed", "1"])
    assert refused.exit_code == 2, refused.output
    assert "model files: preset aerith-tiny (seed 0) then, preset aerith-tiny (seed 1) now" in refused.output
    assert "--overwrite" in refused.output and "Traceback" not in refused.output
    monkeypatch.undo()
    again = _cli(["aerith-tiny", *base, "--seed", "1", "--overwrite"])
    assert again.exit_code == 0, again.output
    assert json.loads((out / RUN_INFO).read_text())["model_fingerprint"] == {"preset": "aerith-tiny", "seed": 1}


def test_cli_bad_input_exits_2_before_the_model_loads(roots, tmp_path, monkeypatch):
    import aerith.infer.load

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(aerith.infer.load, "load_vlm", no_loading)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    base = ["aerith-tiny", "--benchmark", "aid", "--root", str(roots["aid"])]
    cases = {
        "unwritable --out": (base + ["--out", str(blocker / "run")], f"--out {blocker / 'run'}: cannot write there"),
        "cuda without CUDA": (base + ["--out", str(tmp_path / "r"), "--device", "cuda"], "has no CUDA GPU"),
        "not a device": (base + ["--out", str(tmp_path / "r"), "--device", "gpu0"], "is not a device name"),
        "bad batch size": (base + ["--out", str(tmp_path / "r"), "--batch-size", "0"], "--batch-size must be >= 1"),
        "no such model": (["no/such/model", *base[1:], "--out", str(tmp_path / "r")], "neither a preset"),
        "unwritable prompts": (["--benchmark", "aid", "--root", str(roots["aid"]), "--write-prompts", str(blocker / "p.jsonl")],
                               "--write-prompts"),
    }
    for name, (args, message) in cases.items():
        r = _cli(args)
        assert r.exit_code == 2, (name, r.output)
        assert message in r.output and "Traceback" not in r.output, (name, r.output)
    assert not (tmp_path / "r" / PREDICTIONS).exists()


def test_cli_broken_model_folder_exits_2(roots, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "aerith", "fusion_dim": "768"}')
    (folder / "model.safetensors").write_bytes(b"truncated")
    r = _cli([str(folder), "--benchmark", "aid", "--root", str(roots["aid"]), "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert str(folder) in r.output


def test_overwrite_removes_only_what_an_evaluation_wrote(tiny, roots, tmp_path):
    from aerith.eval.runner import clear_run

    other = tmp_path / "other"
    other.mkdir()
    (other / "results.json").write_text(json.dumps({"files": ["notes.txt"]}))
    (other / "notes.txt").write_text("mine")
    assert clear_run(other) == []  # no run.json and no answers: not an evaluation folder
    assert (other / "notes.txt").read_text() == "mine"

    out = tmp_path / "run"
    _run(Counting(tiny), roots, out)
    (out / "notes.txt").write_text("mine")
    removed = {p.name for p in clear_run(out)}
    assert {PREDICTIONS, RUN_INFO, "results.json", "results.md", "confusion_matrix.png"} <= removed
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_library_call_and_the_cli_fingerprint_a_saved_model_alike(tmp_path):
    from aerith.eval.fingerprint import loaded_model_fingerprint
    from aerith.infer.vlm import AerithVLM

    folder = AerithVLM.from_preset("aerith-tiny", seed=0, device="cpu").save_pretrained(tmp_path / "model")
    from aerith.infer.load import load_vlm

    assert loaded_model_fingerprint(load_vlm(folder)) == model_fingerprint(folder)  # either may resume the other's run
    in_memory = loaded_model_fingerprint(AerithVLM.from_preset("aerith-tiny", seed=0, device="cpu"))
    assert in_memory["in_memory"] and in_memory == loaded_model_fingerprint(AerithVLM.from_preset("aerith-tiny", seed=0, device="cpu"))
    assert in_memory != loaded_model_fingerprint(AerithVLM.from_preset("aerith-tiny", seed=1, device="cpu"))
