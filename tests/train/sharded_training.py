"""A few AdamW steps of aerith-tiny (LoRA and the connector trained), sharded with torch FSDP2.

CONNECTOR is ``pooler`` (the attention pooler, trained with its projector) or ``mlp``. Run by
tests/train/test_sharded_checkpoint.py:

    torchrun --nproc_per_node 2 tests/train/sharded_training.py OUT CONNECTOR   # FSDP2 (fully_shard) over gloo, CPU
    python tests/train/sharded_training.py OUT CONNECTOR                        # the same steps in one process

Both see the same global batches (each of two processes half of each); the loss is summed over
answer tokens and divided by the global batch's token count, as Aerith's training loop does, so the
two runs take the same steps. At the end the main process gathers the full state dict (what
``accelerator.get_state_dict`` does for FSDP), writes it with ``save_pretrained`` beside the
processor, and saves the sharded model's logits on a probe batch together with the step losses.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

LAYERS = ("LlamaDecoderLayer", "CLIPEncoderLayer", "DINOv3ViTLayer", "PoolerLayer")
STEPS = 3
GLOBAL_BATCH = 4


def _images(n: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(n)]


def batch(processor, seed: int, start: int = 0, stop: int = GLOBAL_BATCH) -> dict[str, torch.Tensor]:
    """Images and ``[CAP]`` chats with an answer; labels on the answer tokens only (right-padded)."""
    answers = ["a forest", "two ships in a harbor", "a river next to farmland", "a large airport"]
    prompts = [processor.format_prompt("[CAP] Describe this image.") for _ in answers]
    full = [f"{p} {a}" for p, a in zip(prompts, answers)]
    inputs = processor(images=_images(GLOBAL_BATCH, seed)[start:stop], text=full[start:stop], padding_side="right")
    labels = inputs["input_ids"].clone()
    for row, prompt in enumerate(prompts[start:stop]):
        n_prompt = len(processor(images=_images(1, 0), text=[prompt])["input_ids"][0])
        labels[row, :n_prompt] = -100
    labels[inputs["attention_mask"] == 0] = -100
    return {**inputs, "labels": labels}


def summed_loss(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(**{k: v for k, v in inputs.items() if k != "labels"}).logits[:, :-1].float()
    labels = inputs["labels"][:, 1:]
    return torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="sum")


def build(connector: str):
    """aerith-tiny's architecture and seed with ``connector``, LoRA r=4; LoRA and the connector train."""
    from aerith.models.build import build_processor
    from aerith.models.lora import LoraSettings
    from aerith.models.modeling_aerith import AerithForConditionalGeneration
    from aerith.models.presets import get_preset
    from aerith.models.tokenizer import build_tiny_tokenizer

    config = get_preset("aerith-tiny").make_config()
    config.connector = connector
    torch.manual_seed(0)
    model = AerithForConditionalGeneration(config)
    model.add_lora(LoraSettings(r=4, alpha=8, dropout=0.0))
    model.requires_grad_(False)
    for name, p in model.named_parameters():
        if name.startswith(("projector.", "pooler.")) or "lora_" in name:
            p.requires_grad_(True)
    return model.train(), build_processor(config, build_tiny_tokenizer())


def main(out: Path, connector: str) -> None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = 0
    if world > 1:
        import torch.distributed as dist
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        dist.init_process_group("gloo")
        rank = dist.get_rank()
    model, processor = build(connector)
    if world > 1:
        mesh = init_device_mesh("cpu", (world,))
        for module in model.modules():
            if type(module).__name__ in LAYERS:
                fully_shard(module, mesh=mesh)
        fully_shard(model, mesh=mesh)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    share = GLOBAL_BATCH // world
    losses = []
    for step in range(STEPS):
        whole = batch(processor, seed=step)
        count = int((whole["labels"][:, 1:] != -100).sum())
        mine = batch(processor, seed=step, start=rank * share, stop=(rank + 1) * share)
        loss = summed_loss(model, mine)
        (loss * world / count).backward()  # FSDP averages gradients over the processes
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        total = loss.detach().clone()
        if world > 1:
            dist.all_reduce(total)
        losses.append(total.item() / count)
    model.eval()
    probe = {k: v for k, v in batch(processor, seed=100).items() if k != "labels"}
    with torch.no_grad():
        logits = model(**probe).logits
    if world > 1:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        state = model.state_dict()
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        model.config.training_state = f"{STEPS} steps, {world} process(es)"
        model.save_pretrained(out / "model", state_dict=state)
        processor.save_pretrained(out / "model")
        torch.save(logits, out / "logits.pt")
        (out / "losses.json").write_text(json.dumps(losses))
        sharded = world > 1 and type(next(iter(model.parameters()))).__name__ == "DTensor"
        (out / "sharded.json").write_text(json.dumps({"world": world, "dtensor_parameters": sharded}))
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
