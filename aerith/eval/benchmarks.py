"""The benchmark registry: dataset + split + task + prompt + answer parser + metric (DESIGN §6).

A :class:`Benchmark` says how one dataset split is asked and scored. The four
task kinds share their prompt builder (the canonical phrasing of
:func:`aerith.data.instructions.eval_prompt`), answer parser and metric:

| task | parser (an answer is *unparsable* when ...) | metric |
|---|---|---|
| ``cls`` | :func:`~aerith.eval.classification.match_class` (... it names no class) | :func:`~aerith.eval.classification.classification_scores` |
| ``vqa`` | :func:`~aerith.eval.vqa.normalize_answer`, numbers for count/area (... it is empty, or has no number or named bucket for a count/area question) | :func:`~aerith.eval.vqa.vqa_scores` |
| ``vg`` | :func:`~aerith.eval.parse_boxes.parse_boxes` (... it holds no box) | :func:`~aerith.eval.grounding.grounding_scores` |
| ``cap`` | the stripped text (... it is empty) | :func:`~aerith.eval.captioning.caption_scores` |

``BENCHMARKS`` covers every dataset of :func:`aerith.data.list_datasets`, several
entries where a dataset has several views (``rsvqa-hr`` and ``rsvqa-hr-phili``,
``rsieval-vqa`` and ``rsieval-cap``, ``synthrs-{cls,vqa,cap,vg}``,
``vrsbench-{cap,vg,vqa}``, whose grounding and caption metrics follow VRSBench's
own protocol, :mod:`aerith.eval.vrsbench`). ``SUITES["seed"]``
is the seed's results table. ``REPORTED`` holds the best published numbers of
``shared/DATASETS.md``: claims made under other protocols, shown beside ours only
for orientation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from aerith.data.sample import Sample

BOX_FORMATS_HELP = "auto, aerith, geochat, vhm, lhrs-nova, qwen, pixel, norm"


@dataclass(frozen=True)
class Parsed:
    """One answer read by a benchmark's parser.

    Attributes:
        value: what the metric sees: a class name or ``None`` (cls), the normalised
            answer (vqa), a list of pixel boxes (vg), the caption (cap).
        parsable: ``False`` when the answer could not be read (see the module table).
    """

    value: Any
    parsable: bool


@dataclass(frozen=True)
class Context:
    """What the parser and metric need beyond the sample: class names and the box format.

    ``class_names``: how prompts spell classes the humanising rules cannot split (the dataset's ``class_names``).
    """

    classes: tuple[str, ...] = ()
    box_format: str = "aerith"
    count_types: tuple[str, ...] = ("count",)
    area_types: tuple[str, ...] = ("area",)
    class_names: Mapping[str, str] = field(default_factory=dict)


PromptFn = Callable[[Sample, Context], str]
ParseFn = Callable[[str, Sample, Context], Parsed]
MetricFn = Callable[[Sequence[str], Sequence[Sample], Sequence[str], Context], dict[str, Any]]


def sample_image_size(sample: Sample) -> tuple[int, int]:
    """``(width, height)`` of a sample's image: from ``meta["image_size"]`` when the loader read it."""
    size = sample.meta.get("image_size")
    if size is None:
        from aerith.imageio import image_size

        size = image_size(sample.image)
    return int(size[0]), int(size[1])


# -- prompts -------------------------------------------------------------------------------------


def _prompt(sample: Sample, ctx: Context) -> str:
    from aerith.data.instructions import eval_prompt

    if sample.task != "cls":
        return eval_prompt(sample.task, sample)
    return eval_prompt("cls", sample, list(ctx.classes), names=ctx.class_names or None)


# -- parsers -------------------------------------------------------------------------------------


def _parse_cls(answer: str, sample: Sample, ctx: Context) -> Parsed:
    from aerith.parsing.classes import match_class

    name, _ = match_class(answer, ctx.classes)
    return Parsed(name, name is not None)


def _parse_vqa(answer: str, sample: Sample, ctx: Context) -> Parsed:
    from aerith.eval.vqa import normalize_answer, parse_quantity

    if sample.kind in ctx.count_types or sample.kind in ctx.area_types:
        number, bucket = parse_quantity(answer, none_is_zero=sample.kind in ctx.count_types)
        return Parsed(bucket if number is None else number, bucket is not None)  # a named bucket: "11-100"
    norm = normalize_answer(answer)
    return Parsed(norm, bool(norm))


def _parse_vg(answer: str, sample: Sample, ctx: Context) -> Parsed:
    from aerith.parsing.boxes import parse_boxes

    boxes = parse_boxes(answer, sample_image_size(sample), fmt=ctx.box_format)
    return Parsed([list(b) for b in boxes], bool(boxes))


def _parse_cap(answer: str, sample: Sample, ctx: Context) -> Parsed:
    text = answer.strip()
    return Parsed(text, bool(text))


# -- metrics -------------------------------------------------------------------------------------


def _metric_cls(answers: Sequence[str], samples: Sequence[Sample], ids: Sequence[str], ctx: Context) -> dict[str, Any]:
    from aerith.eval.classification import classification_scores

    return classification_scores(list(answers), [s.targets[0] for s in samples], list(ctx.classes))


def _metric_vqa(answers: Sequence[str], samples: Sequence[Sample], ids: Sequence[str], ctx: Context) -> dict[str, Any]:
    from aerith.eval.vqa import vqa_scores

    return vqa_scores(
        list(answers),
        [list(s.targets) for s in samples],
        [s.kind or "all" for s in samples],
        count_types=ctx.count_types,
        area_types=ctx.area_types,
    )


def _metric_vg(answers: Sequence[str], samples: Sequence[Sample], ids: Sequence[str], ctx: Context) -> dict[str, Any]:
    from aerith.eval.grounding import grounding_scores

    preds = [_parse_vg(a, s, ctx).value for a, s in zip(answers, samples, strict=True)]
    return grounding_scores(preds, [s.box for s in samples])


def _metric_cap(answers: Sequence[str], samples: Sequence[Sample], ids: Sequence[str], ctx: Context) -> dict[str, Any]:
    from aerith.eval.captioning import caption_scores

    return caption_scores(
        dict(zip(ids, answers, strict=True)), {i: list(s.targets) for i, s in zip(ids, samples, strict=True)}
    )


def _metric_vrsbench_vg(answers: Sequence[str], samples: Sequence[Sample], ids: Sequence[str], ctx: Context) -> dict[str, Any]:
    from aerith.eval.vrsbench import grounding_scores

    preds = [_parse_vg(a, s, ctx).value for a, s in zip(answers, samples, strict=True)]
    return grounding_scores(
        preds, [s.meta["box100"] for s in samples], [sample_image_size(s) for s in samples], [bool(s.meta["unique"]) for s in samples]
    )


def _metric_vrsbench_cap(answers: Sequence[str], samples: Sequence[Sample], ids: Sequence[str], ctx: Context) -> dict[str, Any]:
    from aerith.eval.vrsbench import mean_length

    return {**_metric_cap(answers, samples, ids, ctx), "mean_length": mean_length([a.strip() for a in answers])}


_PARSERS: Mapping[str, ParseFn] = MappingProxyType({"cls": _parse_cls, "vqa": _parse_vqa, "vg": _parse_vg, "cap": _parse_cap})
_METRICS: Mapping[str, MetricFn] = MappingProxyType({"cls": _metric_cls, "vqa": _metric_vqa, "vg": _metric_vg, "cap": _metric_cap})

_MISSING = "A sample without a prediction is scored as an empty answer ({})."
PROTOCOLS: Mapping[str, str] = MappingProxyType(
    {
        "cls": "Accuracy and balanced accuracy (mean per-class recall). Answers are matched to a class by "
        "normalised exact match, then a class name contained in the answer, then the closest name "
        "(difflib ratio >= 0.85); answers matching no class count as wrong and are reported. " + _MISSING.format("wrong"),
        "vqa": "RSVQA protocol: accuracy per question type, AA (mean over types) and OA (over all questions) "
        "after answer normalisation (case, punctuation, articles, number words, yes/no synonyms); count and "
        "area compared as numbers, also bucketed (0, 1-10, 11-100, 101-1000, >1000) and reported apart. "
        + _MISSING.format("wrong"),
        "vg": "Acc@0.5 (IoU >= 0.5 of the first predicted box), Acc@0.5:0.95 (mean over IoU thresholds "
        "0.5:0.05:0.95) and mean IoU; answers without a box score IoU 0 and are counted. " + _MISSING.format("IoU 0"),
        "cap": "BLEU-1..4, METEOR, ROUGE-L and CIDEr-D from pycocoevalcap's scorers after its PTB tokenizer "
        "(CIDEr-D df from the evaluated references), x100 as in papers; SG-F1 is Aerith's rule-based "
        "scene-graph F1, not SPICE; hallucinated / missing object rates from the same parser. "
        + _MISSING.format("an empty caption"),
    }
)


@dataclass(frozen=True)
class Benchmark:
    """One evaluation: which data, what is asked, how answers are read and scored.

    Attributes:
        name: registry key, e.g. ``"dior-rsvg"``.
        dataset: :func:`aerith.data.load_dataset` name.
        split: default split.
        task: ``"cls"``, ``"vqa"``, ``"cap"`` or ``"vg"``.
        protocol: the scoring protocol in words (printed in results.md).
        prompt: ``(sample, context) -> prompt`` with the task token.
        parse: ``(answer, sample, context) -> Parsed``.
        metric: ``(answers, samples, ids, context) -> scores``.
        load_kwargs: extra loader arguments (``task="vqa"`` for RSIEval, SynthRS).
        crop_to_box: classify the crop of ``sample.box`` rather than the whole image (fMoW).
        count_types, area_types: VQA question types scored as numbers.
        note: anything a reader of the results must know about this benchmark.
    """

    name: str
    dataset: str
    split: str
    task: str
    protocol: str
    prompt: PromptFn = field(repr=False)
    parse: ParseFn = field(repr=False)
    metric: MetricFn = field(repr=False)
    load_kwargs: Mapping[str, Any] = field(default_factory=dict)
    crop_to_box: bool = False
    count_types: tuple[str, ...] = ("count",)
    area_types: tuple[str, ...] = ("area",)
    note: str = ""

    def context(self, dataset: Any, box_format: str = "aerith") -> Context:
        """The parser/metric context for a loaded dataset (its ``classes``) and a box format."""
        if self.task != "cls":
            return Context((), box_format, self.count_types, self.area_types)
        classes = tuple(getattr(dataset, "classes", ()) or ())
        names = dict(getattr(dataset, "class_names", None) or {})
        return Context(classes, box_format, self.count_types, self.area_types, names)

    def load(self, root: Any, split: str | None = None) -> Any:
        """The dataset split this benchmark reads (``split`` defaults to :attr:`split`)."""
        from aerith.data import load_dataset

        return load_dataset(self.dataset, root, split or self.split, **dict(self.load_kwargs))


def _bench(name: str, dataset: str, task: str, split: str = "test", note: str = "", **kwargs: Any) -> Benchmark:
    protocol = PROTOCOLS[task] + (f" {note}" if note else "")
    return Benchmark(
        name=name,
        dataset=dataset,
        split=split,
        task=task,
        protocol=protocol,
        prompt=_prompt,
        parse=_PARSERS[task],
        metric=_METRICS[task],
        note=note,
        **kwargs,
    )


_NO_SPLIT = "No official split: the loader's split files when present, else its seeded stratified split."

BENCHMARKS: dict[str, Benchmark] = {
    # scene classification
    "ucm": _bench("ucm", "ucm", "cls", note=_NO_SPLIT),
    "aid": _bench("aid", "aid", "cls", note=_NO_SPLIT),
    "nwpu-resisc45": _bench("nwpu-resisc45", "nwpu-resisc45", "cls", note=_NO_SPLIT),
    "whu-rs19": _bench("whu-rs19", "whu-rs19", "cls", note=_NO_SPLIT),
    "eurosat": _bench("eurosat", "eurosat", "cls", note=_NO_SPLIT),
    "eurosat-ms": _bench("eurosat-ms", "eurosat-ms", "cls", note="RGB from bands B04, B03, B02. " + _NO_SPLIT),
    "fmow": _bench(
        "fmow", "fmow", "cls", split="val", crop_to_box=True,
        note="The crop of each labelled box is classified; split val (test labels ship separately).",
    ),
    # visual grounding
    "rsvg": _bench("rsvg", "rsvg", "vg"),
    "dior-rsvg": _bench("dior-rsvg", "dior-rsvg", "vg"),
    # VQA
    "rsvqa-lr": _bench("rsvqa-lr", "rsvqa-lr", "vqa"),
    "rsvqa-hr": _bench("rsvqa-hr", "rsvqa-hr", "vqa", note="Test set 1 (same area as training)."),
    "rsvqa-hr-phili": _bench(
        "rsvqa-hr-phili", "rsvqa-hr", "vqa", split="test_phili", note="Test set 2 (Philadelphia, another area)."
    ),
    "rsieval-vqa": _bench("rsieval-vqa", "rsieval", "vqa", load_kwargs={"task": "vqa"}),
    # captioning
    "rsieval-cap": _bench("rsieval-cap", "rsieval", "cap", load_kwargs={"task": "cap"}),
    "rsicap": _bench(
        "rsicap", "rsicap", "cap", split="train",
        note="RSICap has only a training split: this measures fit to training data, not generalisation.",
    ),
    "rsicd": _bench("rsicd", "rsicd", "cap"),
    "rsitmd": _bench("rsitmd", "rsitmd", "cap"),
    "ucm-captions": _bench("ucm-captions", "ucm-captions", "cap"),
    "sydney-captions": _bench("sydney-captions", "sydney-captions", "cap"),
    # SynthRS, one benchmark per task
    "synthrs-cls": _bench("synthrs-cls", "synthrs", "cls", load_kwargs={"task": "cls"}),
    "synthrs-vqa": _bench("synthrs-vqa", "synthrs", "vqa", load_kwargs={"task": "vqa"}),
    "synthrs-cap": _bench("synthrs-cap", "synthrs", "cap", load_kwargs={"task": "cap"}),
    "synthrs-vg": _bench("synthrs-vg", "synthrs", "vg", load_kwargs={"task": "vg"}),
    # VRSBench (its evaluation set), in its own protocol
    "vrsbench-cap": replace(
        _bench(
            "vrsbench-cap", "vrsbench", "cap", load_kwargs={"task": "cap"},
            note="VRSBench: one human-verified reference caption per image; the mean caption length in words is "
            "reported as in the paper (Avg_L). The authors scored with GeoChat's caption_eval (pycocoevalcap, "
            "CIDEr rather than CIDEr-D): close, not identical.",
        ),
        metric=_metric_vrsbench_cap,
    ),
    "vrsbench-vg": replace(
        _bench(
            "vrsbench-vg", "vrsbench", "vg", load_kwargs={"task": "vg"},
            note="VRSBench's own protocol (the authors' compute_metrics), in place of the vg protocol for this "
            "benchmark: the first box of each answer is mapped to the 0-100 grid of the references (truncated to "
            "integers, as the references are) and scored against the reference's {<x1><y1><x2><y2>} box with "
            "the authors' IoU (corners inclusive: +1 on each side); Acc@0.5 and Acc@0.7 for unique, non-unique and "
            "all expressions, and mean IoU. Every expression counts: an answer without a box scores IoU 0 and is "
            "counted as unparsable.",
        ),
        metric=_metric_vrsbench_vg,
    ),
    "vrsbench-vqa": _bench(
        "vrsbench-vqa", "vrsbench", "vqa", load_kwargs={"task": "vqa"}, count_types=("quantity",), area_types=(),
        note="VRSBench: the file's 12 question types are folded into the published table's 10 columns ('image' "
        "and 'rural or urban' into scene, inferred from the published counts) and AA is their mean (the paper's "
        "Avg.). Open answers are judged here by normalised exact matching, NOT by GPT-4 as in the paper, so the "
        "numbers are not directly comparable; quantity answers are compared as numbers.",
    ),
}

SUITES: dict[str, list[str]] = {
    "seed": ["aid", "whu-rs19", "eurosat", "nwpu-resisc45", "ucm", "rsvg", "dior-rsvg", "rsvqa-lr"],
}

# Best published numbers (shared/DATASETS.md): benchmark -> {results.md metric row: "value, by whom"}.
REPORTED: dict[str, dict[str, str]] = {
    "aid": {"accuracy": "91.7 (LHRS-Bot 91.26), VHM"},
    "ucm": {"accuracy": "86.3, TEOChat"},
    "nwpu-resisc45": {"accuracy": "94.5 (third-party) / LHRS-Bot 83.94, VHM"},
    "whu-rs19": {"accuracy": "95.8 (third-party) / LHRS-Bot 93.17, VHM"},
    "eurosat": {"accuracy": "51.4, LHRS-Bot"},
    "fmow": {"accuracy": "56.6, LHRS-Bot"},
    "rsvqa-lr": {
        "accuracy (presence)": "91.7, TEOChat / VHM",
        "accuracy (comp)": "92.7, TEOChat / VHM",
        "accuracy (rural_urban)": "95.0, TEOChat / VHM",
    },
    "rsvg": {"Acc@0.5": "73.45, LHRS-Bot"},
    "dior-rsvg": {"Acc@0.5": "88.59, SkyEyeGPT"},
    "ucm-captions": {"CIDEr-D": "333.2, RSGPT"},
    "rsicd": {"CIDEr-D": "102.9, RSGPT"},
    # VRSBench's own baselines (fine-tuned on its training set), from the authors' README
    "vrsbench-cap": {
        "BLEU-1": "48.1, LLaVA-1.5 (fine-tuned)",
        "BLEU-2": "31.5, LLaVA-1.5 (fine-tuned)",
        "BLEU-3": "21.2, LLaVA-1.5 (fine-tuned)",
        "BLEU-4": "14.7, LLaVA-1.5 (fine-tuned)",
        "METEOR": "21.9, LLaVA-1.5 (fine-tuned)",
        "ROUGE-L": "36.9, LLaVA-1.5 (fine-tuned)",
        "CIDEr-D": "33.9 (CIDEr), LLaVA-1.5 (fine-tuned)",
        "mean length (words)": "49, LLaVA-1.5 (fine-tuned)",
    },
    "vrsbench-vg": {
        "Acc@0.5": "39.6, GeoChat (fine-tuned)",
        "Acc@0.7": "19.1, GeoChat (fine-tuned)",
        "Acc@0.5 (unique)": "55.1, GeoChat (fine-tuned)",
        "Acc@0.7 (unique)": "31.2, GeoChat (fine-tuned)",
        "Acc@0.5 (non-unique)": "32.4, MiniGPT-v2 (fine-tuned)",
        "Acc@0.7 (non-unique)": "15.2, MiniGPT-v2 (fine-tuned)",
    },
    "vrsbench-vqa": {  # judged by GPT-4 in the paper
        "accuracy (category)": "62.8, LLaVA-1.5 (fine-tuned; GPT-4 judged)",
        "accuracy (presence)": "89.9, GeoChat (fine-tuned; GPT-4 judged)",
        "accuracy (quantity)": "50.4, LLaVA-1.5 (fine-tuned; GPT-4 judged)",
        "accuracy (color)": "58.7, GeoChat (fine-tuned; GPT-4 judged)",
        "accuracy (shape)": "59.1, GeoChat (fine-tuned; GPT-4 judged)",
        "accuracy (size)": "53.7, Mini-Gemini (fine-tuned; GPT-4 judged)",
        "accuracy (position)": "57.0, GeoChat (fine-tuned; GPT-4 judged)",
        "accuracy (direction)": "50.7, LLaVA-1.5 (fine-tuned; GPT-4 judged)",
        "accuracy (scene)": "66.1, GeoChat (fine-tuned; GPT-4 judged)",
        "accuracy (reasoning)": "64.9, LLaVA-1.5 / GeoChat (fine-tuned; GPT-4 judged)",
        "AA": "60.9, LLaVA-1.5 (fine-tuned; GPT-4 judged; GPT-4V zero-shot 65.6)",
    },
}


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name``.

    Raises:
        KeyError: an unknown name, listing the valid ones.
    """
    try:
        return BENCHMARKS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; valid benchmarks: {', '.join(list_benchmarks())}") from None


def list_benchmarks() -> list[str]:
    """All benchmark names, sorted."""
    return sorted(BENCHMARKS)


def get_suite(name: str) -> list[Benchmark]:
    """The benchmarks of suite ``name``, in table order.

    Raises:
        KeyError: an unknown suite, listing the valid ones.
    """
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}; valid suites: {', '.join(sorted(SUITES))}")
    return [BENCHMARKS[n] for n in SUITES[name]]
