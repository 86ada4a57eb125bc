"""Align lowers the cosine distance; instructblip-tiny SFT runs and lowers its loss (SynthRS); the CLI wires it all."""

import json

import pytest
import torch
from typer.testing import CliRunner

from aerith.cli import app
from aerith.train.commands import build_config
from aerith.train.loop import train
from tests.train.helpers import write_recipe


def test_align_lowers_cosine_distance_and_trains_only_the_head(synthrs_root, tmp_path):
    recipe = write_recipe(
        tmp_path / "align.yaml", synthrs_root, tmp_path / "run", stage="align",
        schedule={"max_steps": 40, "warmup_steps": 2}, optim={"lr": 1.0e-2}, logging={"every": 10, "val_every": 20},
    )  # fmt: skip
    result = CliRunner().invoke(app, ["align", str(recipe)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in records if "val_loss" in r]
    # mean cosine distance per patch: ratio 0.14-0.29 for data and model seeds 0, 1, 2
    assert len(val) == 3 and val[-1] < 0.6 * val[0], val
    state = json.loads((tmp_path / "run" / "checkpoint-final" / "trainer_state.json").read_text())
    assert state["trainable"] == ["dino_head"] and state["trainable_parameters"] == 64 * 64 + 64
    # aligned from random weights, the language path is still random: labelled so
    from aerith.infer.load import load_vlm
    from aerith.train.stages import get_stage

    aligned = load_vlm(tmp_path / "run")
    assert aligned.is_random_init and aligned.training_state.startswith("random-init; align: 40 steps")
    state_7b = "random-init pooler, projector and LoRA; pretrained towers and LLM"
    assert get_stage("align").training_state(9, "x", state_7b) == f"{state_7b}; align: 9 steps on x"
    assert not get_stage("sft").training_state(9, "synthrs/train", aligned.training_state).startswith("random-init")


def test_align_refuses_to_train_the_target_side(synthrs_root, tmp_path):
    recipe = write_recipe(tmp_path / "a.yaml", synthrs_root, tmp_path / "run", stage="align", trainable=["dino_head", "clip_proj"])
    result = CliRunner().invoke(app, ["align", str(recipe)])
    assert result.exit_code == 2 and "CLIP's frozen projection is the target" in result.output


def test_instructblip_tiny_sft_lowers_loss(synthrs_root, tmp_path):
    recipe = write_recipe(
        tmp_path / "ib.yaml", synthrs_root, tmp_path / "run",
        model={"init": "instructblip-tiny", "lora": None},
        trainable=["vision_model", "qformer", "query_tokens", "language_projection", "language_model"],
        schedule={"max_steps": 60, "warmup_steps": 5}, logging={"every": 10, "val_every": 30},
    )  # fmt: skip
    result = train(build_config("sft", recipe))
    first, last = result.val_loss[0][1], result.val_loss[-1][1]
    # Random T5 weights start far above a uniform guess (62-70 nats per token); 60 steps take it to
    # 11.6-13.8 (ratio 0.18-0.20 for data and model seeds 0, 1, 2); 160 steps go below ln(vocab).
    assert last < 0.5 * first, result.val_loss
    from aerith.infer.instructblip import InstructBlipVLM

    vlm = InstructBlipVLM.from_pretrained(result.final_dir)
    assert vlm.model.config.training_state.startswith("sft: 60 steps") and not vlm.is_random_init
    assert isinstance(vlm.generate("aerith/assets/sample.png", "[CAP] Describe this image.", max_new_tokens=4), str)


def test_instructblip_recipe_trains_only_qformer_queries_projection():
    from aerith.train.backbones import load_backbone

    backbone = load_backbone("instructblip-tiny")
    n = backbone.set_trainable(["qformer", "query_tokens", "language_projection"])
    m = backbone.model
    expected = sum(p.numel() for p in [*m.qformer.parameters(), m.query_tokens, *m.language_projection.parameters()])
    assert n == expected
    assert not any(p.requires_grad for p in [*m.vision_model.parameters(), *m.language_model.parameters()])
    with pytest.raises(ValueError, match="LoRA is supported on AerithVLM"):
        backbone.add_lora({"r": 4})


def test_cli_errors_are_clear(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["sft", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "not found" in result.output
    result = runner.invoke(app, ["align", "configs/sft-aerith-tiny.yaml"])
    assert result.exit_code == 2 and "recipe for `aerith sft`" in result.output
    result = runner.invoke(app, ["merge-lora", str(tmp_path), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "no config.json; expected a folder written by save_pretrained" in result.output


def test_instructblip_vicuna_sft_labels_follow_the_whole_sequence():
    """Decoder-only InstructBLIP: labels were the T5 decoder's (B, answer length), a cross-entropy shape error, or when
    the lengths happened to match, answer tokens silently labelling the image-token positions."""
    from types import SimpleNamespace

    from aerith.train.backbones import load_backbone
    from aerith.train.collate import IGNORE
    from aerith.train.sft import CausalSFTObjective, _collate, _objective
    from tests.train.helpers import Instruction

    backbone = load_backbone("instructblip-vicuna-tiny")
    tok, queries = backbone.processor.tokenizer, backbone.model.config.num_query_tokens
    image = SimpleNamespace(image="aerith/assets/sample.png")
    ins = [
        Instruction("cap", "[CAP] Describe this image.", " ".join(["house"] * 19), image),
        Instruction("vqa", "[VQA] How many houses are there in this picture?", "two", image),
    ]
    batch = _collate(backbone, ins, 256)
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert labels.shape == ids.shape and mask[0, -1] == 1 and mask[1, -1] == 0  # right padding
    for row, i in enumerate(ins):
        prompt = queries + len(tok(i.prompt)["input_ids"])
        assert bool((ids[row, :queries] == backbone.model.config.image_token_id).all())
        assert bool((labels[row, :prompt] == IGNORE).all()) and bool((labels[row][mask[row] == 0] == IGNORE).all())
        answer = labels[row][labels[row] != IGNORE]
        assert torch.equal(answer, ids[row, prompt : prompt + len(answer)]) and int(mask[row].sum()) == prompt + len(answer)
        assert tok.decode(answer) == " " + i.target + tok.eos_token
    objective = _objective(backbone, None)
    assert isinstance(objective, CausalSFTObjective)
    with torch.no_grad():  # the summed next-token loss is transformers' own (mean) loss on these labels
        torch.testing.assert_close(objective(batch) / objective.count(batch), backbone.model(**batch).loss)
    with pytest.raises(ValueError, match="the prompt takes 22 tokens with its image tokens, data.max_length is 22"):
        _collate(backbone, ins[:1], 22)


def test_instructblip_vicuna_tiny_sft_lowers_loss_and_round_trips(synthrs_root, tmp_path):
    from aerith.infer.load import load_vlm

    recipe = write_recipe(
        tmp_path / "ibv.yaml", synthrs_root, tmp_path / "run",
        model={"init": "instructblip-vicuna-tiny", "lora": None},
        trainable=["vision_model", "qformer", "query_tokens", "language_projection", "language_model"],
        schedule={"max_steps": 20, "warmup_steps": 2}, logging={"every": 10, "val_every": 10}, data={"max_val_samples": 8},
        optim={"lr": 3.0e-3},
    )  # fmt: skip
    result = train(build_config("sft", recipe))
    first, last = result.val_loss[0][1], result.val_loss[-1][1]
    # about ln(vocab) = 8.1 nats per token at the start; ratio 0.69-0.77 after 20 steps for seeds 0, 1, 2
    assert last < 0.85 * first, result.val_loss
    assert load_vlm("instructblip-vicuna-tiny").is_random_init
    vlm = load_vlm(result.final_dir)
    assert vlm.kind == "instructblip" and vlm.model.config.use_decoder_only_language_model
    assert vlm.model.config.training_state.startswith("sft: 20 steps") and not vlm.is_random_init
    vlm.save_pretrained(tmp_path / "copy")
    again = load_vlm(tmp_path / "copy")
    from aerith.models.instructblip import encode_inputs

    inputs = encode_inputs(vlm.processor, vlm.model.config, ["aerith/assets/sample.png"], ["[CAP] Describe this image."])
    with torch.no_grad():
        torch.testing.assert_close(again.model(**inputs).logits, vlm.model(**inputs).logits, rtol=0, atol=0)
    assert vlm.generate("aerith/assets/sample.png", "[CAP] Describe this image.", max_new_tokens=4) == again.generate(
        "aerith/assets/sample.png", "[CAP] Describe this image.", max_new_tokens=4
    )
