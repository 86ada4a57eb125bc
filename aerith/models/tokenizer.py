"""Tokens Aerith adds to any tokenizer, and the offline tokenizer of the tiny presets.

The tiny presets cannot download a tokenizer, so one is trained here, in well
under a second, on a built-in corpus of remote-sensing words: a byte-level
BPE (any text is encodable) whose merges give every integer 0-1000 its own
token, with and without a leading space, so that a box ``[x1, y1, x2, y2]``
costs nine tokens rather than a digit at a time.
"""

from __future__ import annotations

import random

from transformers import PreTrainedTokenizerFast

from aerith.tasks import TASK_TOKENS

IMAGE_TOKEN = "<image>"
CHAT_TOKENS = ("[INST]", "[/INST]")

_WORDS = """
a an the of in on at to from with and or is are there this that which what how many much where image picture
photo scene aerial satellite view top down remote sensing describe choose category best describes answer single
word phrase locate find yes no left right top bottom middle center centre upper lower corner side next near beside
along around between surrounded by above below behind front close far large small big tiny medium long short wide
narrow round square rectangular circular white black grey gray red green blue yellow orange brown dark light
building buildings house houses residential dense sparse medium commercial industrial area areas road roads street
streets highway freeway intersection overpass bridge bridges river rivers lake lakes pond sea beach coast harbor
harbour port ship ships boat boats vessel airplane airplanes plane planes aircraft airport runway runways parking
lot lots car cars vehicle vehicles truck trucks storage tank tanks oil tree trees forest farmland field fields
crop crops farm meadow grass desert sand mountain hill island snow cloud tennis court courts baseball diamond
basketball football soccer track stadium church school park playground resort square station railway train golf
course chaparral agricultural mobile home homes terrace wetland palace roundabout container dam chimney windmill
expressway toll service urban rural count number more fewer less than equal same as both all some several
one two three four five six seven eight nine ten water land vegetation green space surface patch pattern texture
""".split()


def _corpus(seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    capitalised = [w.capitalize() for w in _WORDS]
    lines = [" ".join(_WORDS)] + [" ".join(capitalised) + ":"] * 3
    for _ in range(300):
        words = [rng.choice(_WORDS) for _ in range(12)]
        lines.append(" ".join([words[0].capitalize(), *words[1:]]) + ".")
    numbers = list(range(1001))
    for _ in range(4):  # each integer appears in boxes with and without a leading space
        rng.shuffle(numbers)
        for i in range(0, len(numbers) - 3, 4):
            lines.append("[{}, {}, {}, {}]".format(*numbers[i : i + 4]))
            lines.append("[{}, {}, {}, {}]".format(*numbers[i + 1 : i + 4], numbers[i]))
    # the first coordinate follows "[" without a space: every integer also appears bare, so each gets its merge
    lines += [f"[{v}" for v in range(1001) for _ in range(4)]
    lines += [f"{t} {w}" for t in (*TASK_TOKENS.values(), *CHAT_TOKENS) for w in _WORDS[:40]]
    return lines


def build_tiny_tokenizer(vocab_size: int = 4096, seed: int = 0) -> PreTrainedTokenizerFast:
    """Train the offline byte-level BPE tokenizer used by ``aerith-tiny`` (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<unk>", IMAGE_TOKEN]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(seed), trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
    )
    fast.add_tokens([*TASK_TOKENS.values(), *CHAT_TOKENS])
    return fast


def add_aerith_tokens(tokenizer) -> int:
    """Give a hub tokenizer the ``<image>`` token and a pad token; returns how many tokens were added.

    Task tokens stay plain text for hub tokenizers, so no embedding row needs training under LoRA.
    """
    added = tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]}) if IMAGE_TOKEN not in tokenizer.get_vocab() else 0
    if tokenizer.pad_token is None:
        added += tokenizer.add_special_tokens({"pad_token": "<pad>"})
    return added
