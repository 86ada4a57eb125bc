"""aerith.load_vlm: one loader for presets, saved folders and run folders of every model kind."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import aerith
from aerith.cli import app
from aerith.infer.facade import VLM
from aerith.infer.instructblip import InstructBlipVLM
from aerith.infer.vlm import AerithVLM
from aerith.runs import FINAL


@pytest.fixture(scope="module")
def image():
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """An Aerith and an InstructBLIP model saved as a run folder would hold them."""
    root = tmp_path_factory.mktemp("models")
    aerith.load_vlm("aerith-tiny", device="cpu").save_pretrained(root / "aerith-run" / FINAL)
    aerith.load_vlm("instructblip-tiny", device="cpu").save_pretrained(root / "ib" / "model")
    return root


@pytest.mark.parametrize("name, cls", [("aerith-tiny", AerithVLM), ("instructblip-tiny", InstructBlipVLM)])
def test_presets_of_both_kinds_give_their_facade(name, cls):
    vlm = aerith.load_vlm(name, device="cpu")
    assert type(vlm) is cls and isinstance(vlm, VLM)
    assert vlm.is_random_init and "RANDOM weights" in vlm.random_weights_warning


def test_saved_folders_and_run_folders_load_by_their_config(saved, image):
    run = aerith.load_vlm(saved / "aerith-run", device="cpu")  # a run folder -> its checkpoint-final
    assert isinstance(run, AerithVLM) and run.name.endswith(FINAL)
    ib = aerith.load_vlm(saved / "ib" / "model", device="cpu")
    assert isinstance(ib, InstructBlipVLM)
    # a folder's name says nothing: the InstructBLIP copy named like an Aerith run still loads as InstructBLIP
    shutil.copytree(saved / "ib" / "model", saved / "aerith-lookalike")
    assert isinstance(aerith.load_vlm(saved / "aerith-lookalike", device="cpu"), InstructBlipVLM)


@pytest.mark.parametrize("kind", ["aerith-tiny", "instructblip-tiny"])
def test_one_protocol_for_both_backbones(kind, image):
    vlm = aerith.load_vlm(kind, device="cpu")
    kwargs = {"max_new_tokens": 6}
    label = vlm.classify(image, ["forest", "beach"], **kwargs)
    assert isinstance(label, str)
    assert isinstance(vlm.answer(image, "Is there a road?", **kwargs), str)
    assert isinstance(vlm.caption([image, image], **kwargs), list)
    boxes = vlm.ground(image, "the white tank", **kwargs)
    assert isinstance(boxes, list) and all(len(b) == 4 for b in boxes)
    batched = vlm.generate([image] * 3, "[CAP] Describe this image.", batch_size=2, **kwargs)
    assert batched == [vlm.generate(image, "[CAP] Describe this image.", **kwargs)] * 3


def test_a_damaged_final_checkpoint_is_named_not_replaced_by_an_older_step(saved, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(saved / "aerith-run" / FINAL, run / "checkpoint-000010")
    (run / FINAL).mkdir()  # its config.json lost
    with pytest.raises(FileNotFoundError, match=r"checkpoint-final has no config.json \(a damaged run\); to use the newest step checkpoint, pass .*checkpoint-000010"):
        aerith.load_vlm(run, device="cpu")
    (run / FINAL).rmdir()  # a run still training: its newest step checkpoint is the model
    assert aerith.load_vlm(run, device="cpu").name.endswith("checkpoint-000010")


def test_a_folder_under_the_home_directory_loads_from_its_tilde_path(saved, monkeypatch):
    monkeypatch.setenv("HOME", str(saved))
    assert isinstance(aerith.load_vlm("~/aerith-run", device="cpu"), AerithVLM)


def test_unknown_name_lists_every_kind_of_preset(tmp_path):
    with pytest.raises(FileNotFoundError, match="aerith-tiny.*instructblip-tiny"):
        aerith.load_vlm(tmp_path / "nowhere")


def test_foreign_model_type_is_refused_naming_the_file(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "geochat"}))
    with pytest.raises(ValueError, match=r"config.json: model_type 'geochat' is not one of"):
        aerith.load_vlm(tmp_path)


def test_cuda_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # the CI machine has none: the check runs there
    with pytest.raises(ValueError, match="no CUDA GPU"):
        aerith.load_vlm("aerith-tiny", device="cuda")


def test_legacy_aerithvlm_load_still_works_and_refuses_other_kinds(saved):
    assert isinstance(AerithVLM.load("aerith-tiny", device="cpu"), AerithVLM)
    with pytest.raises(ValueError, match="instructblip model, not an AerithVLM"):
        AerithVLM.load(saved / "ib" / "model", device="cpu")


def test_predict_and_eval_commands_take_instructblip_checkpoints(saved, tmp_path):
    from aerith.data.synthrs import generate

    png = tmp_path / "scene.png"
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(png)
    result = CliRunner().invoke(app, ["predict", str(saved / "ib" / "model"), str(png), "[CAP] Describe this image."])
    assert result.exit_code == 0, result.output
    root = tmp_path / "synth"
    generate(root, 12, 64, 0)
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        app,
        ["eval", str(saved / "ib" / "model"), "--benchmark", "synthrs-cls", "--root", str(root), "--out", str(out),
         "--split", "train", "--limit", "4", "--max-new-tokens", "4", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["counts"]["samples"] == 4 and results["random_weights"] is True


def test_untrained_weights_stay_labelled_after_merging_or_box_fitting(tmp_path):
    from types import SimpleNamespace

    from aerith.models.modeling_aerith import AerithForConditionalGeneration
    from aerith.models.presets import PRESETS, _tiny_config
    from aerith.train.merge import merge_lora_checkpoint

    base = aerith.load_vlm("aerith-tiny", device="cpu")
    config = _tiny_config()
    config.lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    AerithVLM(AerithForConditionalGeneration(config).eval(), base.processor, name="x").save_pretrained(tmp_path / "lora")
    merged = aerith.load_vlm(merge_lora_checkpoint(tmp_path / "lora", tmp_path / "merged"), device="cpu")
    assert merged.training_state == "random-init; LoRA merged"
    assert merged.is_random_init and "RANDOM weights" in merged.random_weights_warning

    def facade(state: str) -> AerithVLM:
        return AerithVLM(SimpleNamespace(config=SimpleNamespace(training_state=state)), None, name="m")

    assert facade("random-init; box head fitted: 50 steps on synthrs train (80 samples with flips)").is_random_init
    assert not facade("sft: 120 steps on synthrs/train (from random-init)").is_random_init
    # aerith-7b built from its preset: pretrained towers and LLM, but the pooler, projector and LoRA are untrained
    seed = facade(PRESETS["aerith-7b"].make_config().training_state)
    assert seed.is_random_init and "pooler, projector and LoRA" in seed.random_weights_warning


def test_a_model_saved_to_the_current_folder_is_written_there(tmp_path, monkeypatch):
    """`merge-lora RUN --out .` in an empty folder: the temporary folder went inside '.', the swap failed
    (OSError: Device or resource busy, a traceback) and the temporary folder was left behind."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    vlm = aerith.load_vlm("aerith-tiny", device="cpu")
    vlm.save_pretrained(".")
    assert sorted(p.name for p in here.iterdir() if p.name.startswith(".")) == []
    assert (here / "config.json").is_file() and [p.name for p in tmp_path.iterdir()] == ["here"]
    assert aerith.load_vlm(str(here), device="cpu").kind == "aerith"
