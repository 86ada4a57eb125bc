"""The accelerate configs under configs/accelerate/ parse, name the strategy they claim, and wrap layers that exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
EXPECTED = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed-zero3": "DEEPSPEED", "cpu-2proc": "MULTI_GPU"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_parses_as_its_strategy(name):
    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert str(config.distributed_type).split(".")[-1] == EXPECTED[name]
    assert config.num_machines == 1 and config.num_processes >= 2
    assert config.mixed_precision == ("no" if name == "cpu-2proc" else "bf16")


def test_only_the_expected_configs_exist():
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


def test_sharded_strategies_gather_full_weights_for_checkpoints():
    fsdp = load_config_from_file(str(CONFIGS / "fsdp.yaml")).fsdp_config
    assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT" and fsdp["fsdp_version"] == 2
    zero = load_config_from_file(str(CONFIGS / "deepspeed-zero3.yaml")).deepspeed_config
    assert zero["zero_stage"] == 3 and zero["zero3_save_16bit_model"] is True


def test_fsdp_wraps_layer_classes_the_models_have():
    from aerith.infer.load import load_vlm

    wrapped = load_config_from_file(str(CONFIGS / "fsdp.yaml")).fsdp_config["fsdp_transformer_layer_cls_to_wrap"].split(",")
    present = set()
    for preset in ("aerith-tiny", "instructblip-tiny"):
        present |= {type(m).__name__ for m in load_vlm(preset, device="cpu").model.modules()}
    assert set(wrapped) <= present, set(wrapped) - present
