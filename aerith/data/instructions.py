"""Task adapters: a :class:`Sample` becomes an instruction, a prompt with its task token and a target text.

Every prompt starts with the task token (DESIGN §3). Each task has several
phrasings (:data:`PHRASINGS`); the first is the canonical one that evaluation and
inference use (:func:`eval_prompt`, the same text as :mod:`aerith.prompts`). In
training the phrasing, and the target when a sample has several (reference
captions, accepted answers), are chosen by ``(seed, index)`` through a local
``random.Random``: the same call always gives the same instruction, and no global
random state is read or changed.

Targets:
- ``cls``: the class name, humanised exactly as in the prompt's class list.
- ``vqa``: one accepted answer.
- ``cap``: one reference caption (evaluation scores against all of them).
- ``vg``: ``[x1, y1, x2, y2]`` on the 0-1000 grid (:mod:`aerith.boxes`).

Class names are humanised by :func:`humanise`: CamelCase, ``_`` and ``-`` become
spaces and words are lower-cased (``DenseResidential`` and ``dense_residential``
-> ``dense residential``; acronyms such as ``USA`` keep their case). Names glued in
lower case (UCM's ``denseresidential``) cannot be split safely and stay as they
are unless an explicit ``names`` mapping spells them out.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from aerith.boxes import format_box, to_grid
from aerith.data.sample import Sample
from aerith.tasks import TASK_TOKENS


# Placeholders: {token}, {classes} (cls), {question} (vqa), {expression} (vg).
# The first phrasing of each task is canonical; it must stay equal to aerith.prompts.
PHRASINGS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "cls": (
            "{token} Choose the category that best describes the image from: {classes}.",
            "{token} Classify this remote-sensing image into one of these categories: {classes}.",
            "{token} Which of the following scene types does this image show: {classes}?",
            "{token} What kind of scene is this? Pick one of: {classes}.",
        ),
        "vqa": (
            "{token} {question} Answer with a single word or phrase.",
            "{token} {question} Reply with one word or a short phrase.",
            "{token} Answer in a word or a short phrase: {question}",
            "{token} Question: {question} Give a short answer.",
        ),
        "cap": (
            "{token} Describe this image.",
            "{token} Write a one-sentence caption for this image.",
            "{token} Briefly describe what this remote-sensing image shows.",
            "{token} Give a short description of this aerial scene.",
            "{token} What does this image show? Answer in one sentence.",
        ),
        "vg": (
            "{token} Locate: {expression}",
            "{token} Give the bounding box of: {expression}",
            "{token} Find the region that matches: {expression}",
            "{token} Where is this object in the image? {expression}",
        ),
    }
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s_\-]+")
_FIELD = re.compile(r"\{(token|classes|question|expression)\}")


@dataclass(frozen=True)
class Instruction:
    """One training or evaluation example in text.

    Attributes:
        task: ``"cls"``, ``"vqa"``, ``"cap"`` or ``"vg"``.
        prompt: the instruction, starting with the task token.
        target: the answer text the model is trained to write.
        sample: the sample it was made from (the image path lives there).
    """

    task: str
    prompt: str
    target: str
    sample: Sample


def humanise(name: str, names: Mapping[str, str] | None = None) -> str:
    """A class name as it is written in prompts and targets (see the module notes).

    Args:
        name: the class name as the dataset spells it.
        names: explicit spellings that win over the rules, e.g. ``{"denseresidential": "dense residential"}``.
    """
    if names is not None and name in names:
        return names[name]
    words = _SEPARATORS.split(_CAMEL.sub(" ", name.strip()))
    return " ".join(w if len(w) > 1 and w.isupper() else w.lower() for w in words if w)


def humanise_classes(classes: Sequence[str], names: Mapping[str, str] | None = None) -> list[str]:
    """Humanise every class name; two names that become the same text are an error."""
    out: list[str] = []
    seen: dict[str, str] = {}
    for cls in classes:
        text = humanise(cls, names)
        if not text:
            raise ValueError(f"class name {cls!r} is empty once humanised")
        if text in seen:
            raise ValueError(f"class names {seen[text]!r} and {cls!r} are both written {text!r} in prompts")
        seen[text] = cls
        out.append(text)
    return out


def _rng(seed: int, index: int, what: str) -> random.Random:
    # A string seed is hashed with SHA-512 by random.Random: stable across runs and platforms.
    return random.Random(f"aerith:{what}:{int(seed)}:{int(index)}")


def _check_task(task: str) -> None:
    if task not in PHRASINGS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(PHRASINGS)}")


def _render(task: str, phrasing: int, sample: Sample | None, classes: Sequence[str] | None) -> str:
    templates = PHRASINGS[task]
    if not 0 <= phrasing < len(templates):
        raise ValueError(f"phrasing {phrasing} out of range: task {task!r} has {len(templates)} phrasings")
    fields = {"token": TASK_TOKENS[task]}
    where = f"{sample.image}: " if sample is not None else ""
    if task == "cls":
        if not classes:
            raise ValueError(f"{where}a classification prompt needs the dataset's class names")
        fields["classes"] = ", ".join(classes)
    elif task in ("vqa", "vg"):
        text = (sample.prompt or "").strip() if sample is not None else ""
        if not text:
            what = "question" if task == "vqa" else "referring expression"
            raise ValueError(f"{where}a {task} sample needs a {what} in Sample.prompt")
        fields["question" if task == "vqa" else "expression"] = text
    return templates[phrasing].format(**fields)


def _vg_target(sample: Sample) -> str:
    from aerith.imageio import image_size

    if sample.box is None:
        raise ValueError(f"{sample.image}: a grounding sample needs a box")
    size = sample.meta.get("image_size") or image_size(sample.image)
    return format_box(to_grid(sample.box, (int(size[0]), int(size[1]))))


def _cls_target(sample: Sample, classes: Sequence[str], names: Mapping[str, str] | None) -> str:
    label = sample.targets[0]
    spelled = humanise_classes(classes, names)
    if label in classes:
        return spelled[list(classes).index(label)]
    text = humanise(label, names)
    if text in spelled:
        return text
    raise ValueError(f"{sample.image}: class {label!r} is not one of the {len(classes)} class names given")


def to_instruction(
    sample: Sample,
    *,
    classes: Sequence[str] | None = None,
    seed: int = 0,
    index: int = 0,
    phrasing: int | None = None,
    names: Mapping[str, str] | None = None,
) -> Instruction:
    """Turn a sample into a prompt and a target.

    Args:
        sample: any :class:`Sample`.
        classes: the dataset's class names (needed for ``cls``), as the dataset spells them.
        seed: run seed; with ``index`` it picks the phrasing and, among several, the target.
        index: position of this example (e.g. the position in the training stream).
        phrasing: index into ``PHRASINGS[sample.task]``; ``None`` draws it, ``0`` is canonical.
        names: explicit humanised spellings of class names (see :func:`humanise`).
    Raises:
        ValueError: naming the image when the sample lacks what its task needs.
    """
    task = sample.task
    _check_task(task)
    if phrasing is None:
        phrasing = _rng(seed, index, "phrasing").randrange(len(PHRASINGS[task]))
    if task == "vg":
        return Instruction(task, _render(task, phrasing, sample, None), _vg_target(sample), sample)
    if not sample.targets:
        raise ValueError(f"{sample.image}: a {task} sample has no target text")
    if task == "cls":
        if not classes:
            raise ValueError(f"{sample.image}: classification needs the dataset's class names")
        target = _cls_target(sample, classes, names)
        prompt = _render(task, phrasing, sample, humanise_classes(classes, names))
        return Instruction(task, prompt, target, sample)
    target = sample.targets[_rng(seed, index, "target").randrange(len(sample.targets))]
    return Instruction(task, _render(task, phrasing, sample, None), target.strip(), sample)


def eval_prompt(
    task: str,
    sample: Sample | None = None,
    classes: Sequence[str] | None = None,
    *,
    names: Mapping[str, str] | None = None,
) -> str:
    """The canonical (first) phrasing of ``task``: what evaluation and inference ask.

    Args:
        task: ``"cls"``, ``"vqa"``, ``"cap"`` or ``"vg"``.
        sample: the sample holding the question / referring expression (``vqa``, ``vg``).
        classes: class names for ``cls``; humanised as in training.
        names: explicit humanised spellings of class names.
    """
    _check_task(task)
    if sample is not None and sample.task != task:
        raise ValueError(f"{sample.image}: a {sample.task} sample cannot make a {task} prompt")
    spelled = humanise_classes(classes, names) if task == "cls" and classes else None
    return _render(task, 0, sample, spelled)


_GROUPS: Mapping[str, str] = MappingProxyType(
    {
        "token": r"(?P<token>\[[A-Z]+\])",
        "classes": r"(?P<classes>.+?)",
        "question": r"(?P<question>.+?)",
        "expression": r"(?P<expression>.+?)",
    }
)


def _template_regex(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    last = 0
    for m in _FIELD.finditer(template):
        parts += [re.escape(template[last : m.start()]), _GROUPS[m.group(1)]]
        last = m.end()
    parts.append(re.escape(template[last:]))
    return re.compile("^" + "".join(parts) + "$", re.DOTALL)


_PATTERNS: Mapping[str, tuple[re.Pattern[str], ...]] = MappingProxyType(
    {task: tuple(_template_regex(t) for t in templates) for task, templates in PHRASINGS.items()}
)


@dataclass(frozen=True)
class ParsedPrompt:
    """What :func:`parse_prompt` recovers from one of our prompts."""

    task: str
    phrasing: int
    question: str | None = None
    expression: str | None = None
    classes: tuple[str, ...] = ()


def parse_prompt(prompt: str) -> ParsedPrompt | None:
    """Recover task, phrasing and fields from a prompt made by :func:`to_instruction`.

    Returns ``None`` when the text is not one of :data:`PHRASINGS` (other phrasings of
    our task tokens are handled by :mod:`aerith.data.interop`).
    """
    text = prompt.strip()
    for task in PHRASINGS:
        if not text.startswith(TASK_TOKENS[task]):
            continue
        for i, pattern in enumerate(_PATTERNS[task]):
            m = pattern.match(text)
            if m is None or m.group("token") != TASK_TOKENS[task]:
                continue
            groups = m.groupdict()
            classes = tuple(c.strip() for c in groups["classes"].split(",")) if groups.get("classes") else ()
            return ParsedPrompt(task, i, groups.get("question"), groups.get("expression"), classes)
    return None
