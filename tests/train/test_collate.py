import torch

from aerith.models.build import build_from_preset
from aerith.train.collate import IGNORE, collate_aerith_sft
from tests.train.helpers import Instruction


def test_labels_cover_answer_tokens_only(synthrs_root):
    from aerith.data import load_dataset

    _, processor = build_from_preset("aerith-tiny")
    ds = load_dataset("synthrs", synthrs_root, split="train", task="cls")
    tok = processor.tokenizer
    items = [
        Instruction("cls", "[CLS] Choose from: a, b.", "forest", ds[0]),
        Instruction("cap", "[CAP] Describe this image.", "a long white building next to a road", ds[1]),
    ]
    batch = collate_aerith_sft(processor, items, max_length=256)
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert ids.shape == labels.shape == mask.shape and batch["pixel_values"].shape[0] == 2
    for row, item in enumerate(items):
        answer = tok(" " + item.target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        kept = labels[row][labels[row] != IGNORE].tolist()
        assert kept == answer  # the answer and its end token, nothing else
        n = int(mask[row].sum())
        assert ids[row, n - len(answer) : n].tolist() == answer  # right after the prompt, before the padding
        assert (ids[row, n:] == tok.pad_token_id).all() and (labels[row, n:] == IGNORE).all()
        image = ids[row] == processor.image_token_id
        assert int(image.sum()) == processor.num_image_tokens and (labels[row][image] == IGNORE).all()
    assert mask[0].sum() < mask[1].sum()  # padding on the right of the shorter row
    assert torch.equal(mask[0, : int(mask[0].sum())], torch.ones(int(mask[0].sum()), dtype=torch.long))




def test_sft_items_spell_class_names_as_the_dataset_says(tmp_path):
    """A UCM class glued in its folder name ('denseresidential') is trained as the words eval asks with."""
    from aerith.data.datasets.ucm import UCMerced
    from aerith.data.sample import Sample
    from aerith.train.config import TrainConfig
    from aerith.train.loop import _item_maker
    from aerith.train.sft import SFT

    config = TrainConfig(data={"train": [{"name": "ucm", "root": str(tmp_path)}]}, logging={"tensorboard": False, "progress": False})
    dataset = UCMerced.__new__(UCMerced)  # only its class attributes are read
    sample = Sample(image=tmp_path / "a.tif", task="cls", targets=("denseresidential",))
    item = _item_maker(config, SFT, None)(dataset, sample, 0)
    assert item.target == "dense residential" and "tennis court" in item.prompt and "denseresidential" not in item.prompt


def test_a_fractional_weight_keeps_at_least_one_sample_and_rounds_halves_up():
    """round() took 0 of a 1-sample source at weight 0.5 (and of 40 at 0.01): it dropped out of training silently."""
    from collections import Counter

    from aerith.train.data import Mixture

    counts = Counter(d for d, _ in Mixture([range(1), range(40), range(5), range(4)], [0.5, 0.01, 0.5, 1.5], seed=0).epoch_order(0))
    assert counts == {0: 1, 1: 1, 2: 3, 3: 6}
