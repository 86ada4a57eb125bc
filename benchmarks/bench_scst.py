"""SCST step time split into sampling, reward and update, and K=5 samples from shared image features against re-encoding.

For aerith-tiny and instructblip-tiny, each first trained briefly on SynthRS captions
(``aerith sft`` on the ``cap`` task, so that the captions end instead of running to
``max_new_tokens``), one SCST step (:class:`aerith.train.scst.SCSTObjective`, k = 5,
max 32 new tokens, otherwise the settings and trainable groups of ``configs/scst-*-tiny.yaml``:
temperature 1, leave-one-out baseline, CIDEr-D reward) is timed in three parts on a batch of
SynthRS images (already collated):

- sampling: the rollout's encoding of each image once and the ``k`` sampled captions
  (``rollout_sampling_s``, under ``no_grad``);
- reward: decoding and scoring the samples, and the baseline (``rollout_reward_s``);
- update: the teacher-forced log-probabilities with gradients, backward, gradient
  clipping and the AdamW step.

The sharing comparison runs the same policy two ways on the same batch and seed: the
library's (``policy.encode`` once per image, the encoding repeated ``k`` times) against
re-encoding the image for every sample (the batch's tensors repeated ``k`` times, then
encoded and sampled with ``k = 1``), for the rollout and for the update (forward +
backward). The two variants alternate over rounds; the ratio is re-encode / shared, of
the median per-batch times. CPU only (no GPU was lent to this task), torch threads as
the process has them.

Run: ``aerith bench --only scst`` (from the repository root) or ``python benchmarks/bench_scst.py``.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

K = 5
BATCH = 8  # images per step (x K samples)
SFT_STEPS = 200
STEPS = 10  # timed SCST steps per model (after one warm-up step)
ROUNDS = 5  # alternating shared / re-encode rounds (after a warm-up round)
MAX_NEW_TOKENS = 32
PRESETS = {  # the SFT stage's trainable groups (random-weight presets); SCST trains its recipe's
    "aerith-tiny": {
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "sft": ["towers", "clip_proj", "dino_head", "pooler", "projector", "lora", "language_model"],
        "recipe": "configs/scst-aerith-tiny.yaml",
    },
    "instructblip-tiny": {
        "lora": None,
        "sft": ["vision_model", "qformer", "query_tokens", "language_projection", "language_model"],
        "recipe": "configs/scst-instructblip-tiny.yaml",
    },
}


def _sft_checkpoint(root: Path, out: Path, init: str) -> Path:
    """A short caption SFT of the preset (the lib's own loop), so that sampled captions end."""
    from aerith.train.commands import build_config
    from aerith.train.loop import train

    spec = PRESETS[init]
    recipe = {
        "stage": "sft",
        "out_dir": str(out),
        "model": {"init": init, "lora": spec["lora"]},
        "trainable": spec["sft"],
        "data": {
            "batch_size": 8,
            "train": [{"name": "synthrs", "root": str(root), "split": "train", "options": {"task": "cap"}}],
            "val": [],
        },
        "optim": {"lr": 1.0e-3},
        "schedule": {"max_steps": SFT_STEPS, "warmup_steps": 5},
        "logging": {"every": SFT_STEPS, "tensorboard": False, "progress": False},
    }
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(recipe))
    return train(build_config("sft", path)).final_dir


def _repeat(batch: dict, k: int) -> dict:
    """Every tensor of a collated batch repeated ``k`` times, image-major: one encoding per sample."""
    return {n: v.repeat_interleave(k, 0) if isinstance(v, torch.Tensor) else v for n, v in batch.items()}


def _median_ms(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 1)


def _bench_model(init: str, checkpoint: Path, root: Path) -> dict:
    from aerith.eval.cider import CiderD
    from aerith.rl.rewards import CaptionReward
    from aerith.train.backbones import load_backbone
    from aerith.train.config import DataSource, SCSTConfig, load_config
    from aerith.train.data import load_sources
    from aerith.train.scst import POLICIES, REFERENCES_KEY, SCSTObjective, collate_scst, reference_documents

    recipe = load_config(REPO / PRESETS[init]["recipe"])
    backbone = load_backbone(str(checkpoint))
    backbone.set_trainable(recipe.trainable)
    backbone.train_mode()
    settings = SCSTConfig(**{**asdict(recipe.scst), "k": K, "max_new_tokens": MAX_NEW_TOKENS})
    (train_set,) = load_sources([DataSource(name="synthrs", root=str(root), split="train", options={"task": "cap"})])
    cider = CiderD.fit(reference_documents([train_set]))  # as prepare_reward does
    reward = CaptionReward(cider, settings.rewards)
    policy = POLICIES[backbone.kind](backbone.model, backbone.processor.tokenizer)
    objective = SCSTObjective(backbone.model, policy, reward, settings)
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    batches = [
        collate_scst(backbone, [train_set[(i * BATCH + j) % len(train_set)] for j in range(BATCH)], 256)
        for i in range(STEPS + 1)
    ]

    # -- one SCST step, three parts ---------------------------------------------------------------
    rows = []
    torch.manual_seed(0)
    for i, batch in enumerate(batches):
        objective.pop_stats()
        t0 = time.perf_counter()
        rolled = objective.rollout(batch)
        t1 = time.perf_counter()
        loss = objective(rolled) / rolled["sample_mask"].sum().clamp(min=1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        stats = objective.pop_stats()
        if i == 0:
            continue  # warm-up
        rows.append({
            "sampling": stats["rollout_sampling_s"], "reward": stats["rollout_reward_s"],
            "rollout_other": (t1 - t0) - stats["rollout_sampling_s"] - stats["rollout_reward_s"],
            "update": t2 - t1, "step": t2 - t0, "tokens": stats["sample_tokens"],
        })  # fmt: skip
    step = sum(r["step"] for r in rows)
    split = {part: round(sum(r[part] for r in rows) / step, 3) for part in ("sampling", "reward", "update", "rollout_other")}

    # -- K samples from one encoding per image against one encoding per sample ---------------------
    inputs = {n: v for n, v in batches[1].items() if n != REFERENCES_KEY}
    repeated = _repeat(inputs, K)
    kwargs = objective._sample_kwargs()
    times = {"shared_rollout": [], "reencode_rollout": [], "shared_update": [], "reencode_update": [],
             "shared_encode": [], "reencode_encode": []}  # fmt: skip

    def encode(variant: str) -> None:
        """The image encoding alone (no grad): what sharing saves in the rollout."""
        objective.model.eval()
        t = time.perf_counter()
        with torch.no_grad():
            policy.encode(inputs if variant == "shared" else repeated)
        times[f"{variant}_encode"].append(time.perf_counter() - t)
        backbone.train_mode()

    def rollout(variant: str):
        objective.model.eval()
        torch.manual_seed(1)
        t = time.perf_counter()
        with torch.no_grad():
            if variant == "shared":
                ids, mask = policy.sample(inputs, policy.encode(inputs), k=K, do_sample=True, **kwargs)
            else:
                ids, mask = policy.sample(repeated, policy.encode(repeated), k=1, do_sample=True, **kwargs)
        times[f"{variant}_rollout"].append(time.perf_counter() - t)
        backbone.train_mode()
        return ids, mask

    def update(variant: str, ids, mask):
        t = time.perf_counter()
        if variant == "shared":
            logp = policy.logprobs(inputs, policy.encode(inputs), ids, mask, K)
        else:
            logp = policy.logprobs(repeated, policy.encode(repeated), ids, mask, 1)
        (-(logp * mask).sum() / mask.sum().clamp(min=1)).backward()
        times[f"{variant}_update"].append(time.perf_counter() - t)
        optimizer.zero_grad(set_to_none=True)  # no step: both variants see the same weights

    same_samples = True
    for _ in range(ROUNDS + 1):  # the first round warms both variants up and is not counted
        for variant in ("shared", "reencode"):
            encode(variant)
            ids, mask = rollout(variant)
            if variant == "shared":
                shared_ids = ids
            else:
                same_samples &= ids.shape == shared_ids.shape and torch.equal(ids, shared_ids)
            update(variant, ids, mask)
    med = {name: statistics.median(v[1:]) for name, v in times.items()}
    return {
        "model": init,
        "batch_images": BATCH,
        "k": K,
        "mean_sample_tokens": round(sum(r["tokens"] for r in rows) / len(rows), 1),
        "step_ms": _median_ms([r["step"] for r in rows]),
        "fractions": split,
        "shared_rollout_ms": round(1000 * med["shared_rollout"], 1),
        "reencode_rollout_ms": round(1000 * med["reencode_rollout"], 1),
        "shared_update_ms": round(1000 * med["shared_update"], 1),
        "reencode_update_ms": round(1000 * med["reencode_update"], 1),
        "shared_encode_ms": round(1000 * med["shared_encode"], 1),
        "reencode_encode_ms": round(1000 * med["reencode_encode"], 1),
        "rollout_ratio": round(med["reencode_rollout"] / med["shared_rollout"], 2),
        "update_ratio": round(med["reencode_update"] / med["shared_update"], 2),
        "total_ratio": round(
            (med["reencode_rollout"] + med["reencode_update"]) / (med["shared_rollout"] + med["shared_update"]), 2
        ),
        "same_samples": bool(same_samples),
    }


def run() -> dict:
    from aerith.data.synthrs import generate

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthrs"
        generate(root, n=100, size=64, seed=0)
        for init in PRESETS:
            checkpoint = _sft_checkpoint(root, Path(tmp) / f"sft-{init}", init)
            rows.append(_bench_model(init, checkpoint, root))
    return {"threads": torch.get_num_threads(), "sft_steps": SFT_STEPS, "steps": STEPS, "rounds": ROUNDS,
            "max_new_tokens": MAX_NEW_TOKENS, "rows": rows}  # fmt: skip


def to_markdown(result: dict) -> str:
    rows = result["rows"]
    lines = [
        f"CPU, {result['threads']} torch threads. Each model: {result['sft_steps']} caption-SFT steps on SynthRS (100 scenes, "
        f"64 px) first, then SCST steps of {rows[0]['batch_images']} images x k = {rows[0]['k']} samples (max "
        f"{result['max_new_tokens']} new tokens, LOO baseline, CIDEr-D reward); {result['steps']} timed steps after a warm-up.",
        "",
        "Step time split (share of the summed step time; rollout other: moving tensors, the LOO baseline):",
        "",
        "| model | step (ms, median) | mean sampled tokens | sampling | reward | update | rollout other |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f = r["fractions"]
        lines.append(
            f"| {r['model']} | {r['step_ms']} | {r['mean_sample_tokens']} | {f['sampling']:.1%} | {f['reward']:.1%} "
            f"| {f['update']:.1%} | {f['rollout_other']:.1%} |"
        )
    lines += [
        "",
        f"K = {rows[0]['k']} samples per image: one encoding shared by the K samples (the library) against re-encoding "
        f"the image for every sample, same batch and seed, median of {result['rounds']} alternating rounds:",
        "",
        "| model | rollout shared (ms) | rollout re-encode (ms) | ratio | update shared (ms) | update re-encode (ms) | ratio "
        "| rollout + update ratio | same samples |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['shared_rollout_ms']} | {r['reencode_rollout_ms']} | {r['rollout_ratio']}x "
            f"| {r['shared_update_ms']} | {r['reencode_update_ms']} | {r['update_ratio']}x | {r['total_ratio']}x "
            f"| {'yes' if r['same_samples'] else 'no'} |"
        )
    lines += [
        "",
        "The image encoding alone (no grad; AerithVLM: towers, pooler and projector; InstructBLIP: vision model, "
        "Q-Former, projection and the T5 encoder), once per image against once per sample, as a share of the "
        "shared rollout:",
        "",
    ]
    for r in rows:
        lines.append(
            f"- {r['model']}: {r['shared_encode_ms']} ms against {r['reencode_encode_ms']} ms "
            f"({r['shared_encode_ms'] / r['shared_rollout_ms']:.1%} and {r['reencode_encode_ms'] / r['shared_rollout_ms']:.1%} "
            "of the shared rollout): the rest of the rollout, sampling the tokens, is the same work either way."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run()))
