"""Caption metrics: pycocoevalcap's scorers called directly, plus SG-F1 and object errors.

BLEU-1..4, METEOR, ROUGE-L and CIDEr-D come from pycocoevalcap's ``Bleu(4)``,
``Meteor()``, ``Rouge()`` and ``Cider()`` after its ``PTBTokenizer``, exactly as
``COCOEvalCap.evaluate()`` would compute them; that method and SPICE are never used
(they download Stanford CoreNLP, which fails offline). The tokenizer and METEOR run
Java. Values are on pycocoevalcap's scale (0-1, CIDEr-D 0-10); papers print x100.
CIDEr-D here takes its document frequencies from the evaluated references, the
standard protocol, unlike the fixed-df ``CiderD`` used for SCST rewards.

SG-F1 (``scene_graph.sg_f1``, not SPICE) and the object errors are computed on the
raw captions with the rule-based scene-graph parser.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from aerith.eval.scene_graph import object_errors, parse, sg_f1


def _check_java() -> None:
    if shutil.which("java") is None:
        raise RuntimeError(
            "caption_scores needs Java on PATH: pycocoevalcap's PTBTokenizer and METEOR run "
            "'java' (install a Java runtime, e.g. 'apt-get install default-jre-headless')"
        )


def _check_inputs(predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]) -> None:
    if set(predictions) != set(references):
        missing = [k for k in references if k not in predictions]
        extra = [k for k in predictions if k not in references]
        raise ValueError(
            "predictions and references must have the same ids: "
            f"{len(missing)} ids without a prediction (e.g. {missing[:3]}), "
            f"{len(extra)} predictions without references (e.g. {extra[:3]})"
        )
    if not predictions:
        raise ValueError("no predictions to score")
    for k, refs in references.items():
        if isinstance(refs, str) or len(refs) == 0:
            raise ValueError(f"references[{k!r}] must be a non-empty list of captions")
        if not all(isinstance(r, str) for r in refs):
            raise TypeError(f"references[{k!r}] must hold strings")
    for k, pred in predictions.items():
        if not isinstance(pred, str):
            raise TypeError(f"predictions[{k!r}] must be a string, got {type(pred).__name__}")


# What Stanford's PTBTokenizer (-preserveLines) ends a line on: pycocoevalcap replaces only "\n", so a
# caption holding another of these (a "\r" left by a CRLF file, U+2028) became two lines and every later
# caption was paired with the wrong image.
_LINE_BREAKS = re.compile("[\r\n\v\f\x85\u2028\u2029]")


def _ptb_tokenize(captions: Mapping[Hashable, Sequence[str]]) -> dict[Hashable, list[str]]:
    """pycocoevalcap's ``PTBTokenizer`` on ``{key: captions}``, line breaks inside a caption read as spaces.

    Raises:
        RuntimeError: the tokenizer did not give back one line per caption.
    """
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokens = PTBTokenizer().tokenize(
        {k: [{"caption": _LINE_BREAKS.sub(" ", c)} for c in caps] for k, caps in captions.items()}
    )
    for k, caps in captions.items():
        if len(tokens.get(k, ())) != len(caps):
            raise RuntimeError(
                f"pycocoevalcap's PTBTokenizer gave {len(tokens.get(k, ()))} tokenised captions for {k!r}, "
                f"which has {len(caps)}: its output is out of step with the captions, nothing is scored"
            )
    return tokens


def _close_meteor(meteor: Any) -> None:
    """Stop METEOR's Java process now instead of whenever the wrapper is garbage-collected."""
    proc = meteor.meteor_p
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    # compute_score leaves its lock held when it raises; the wrapper's __del__ takes the
    # lock, so a held lock would hang garbage collection.
    if meteor.lock.locked():
        meteor.lock.release()


def coco_scores(
    predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
) -> dict[str, float]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr-D from pycocoevalcap's scorers.

    Returns:
        ``{"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"}``.
    """
    _check_inputs(predictions, references)
    _check_java()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge

    # One tokenizer run for both sides: it tokenises line by line, so this equals two runs.
    both: dict[Hashable, Sequence[str]] = {("ref", k): refs for k, refs in references.items()}
    both.update({("pred", k): [pred] for k, pred in predictions.items()})
    tokens = _ptb_tokenize(both)
    gts = {k: tokens[("ref", k)] for k in references}
    res = {k: tokens[("pred", k)] for k in references}

    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    meteor = Meteor()
    try:
        meteor_score, _ = meteor.compute_score(gts, res)
    finally:
        _close_meteor(meteor)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    out = {f"BLEU-{i + 1}": float(b) for i, b in enumerate(bleu)}
    out.update({"METEOR": float(meteor_score), "ROUGE-L": float(rouge), "CIDEr-D": float(cider)})
    return out


def scene_graph_scores(
    predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
) -> dict[str, float | None]:
    """SG-F1 (not SPICE) and object errors averaged over images.

    Returns:
        ``SG-P``, ``SG-R``, ``SG-F1``: means over images of ``sg_f1``'s overall
        precision, recall and F1; ``SG-F1-object``, ``SG-F1-attribute``,
        ``SG-F1-relation``: means over the images where that kind is defined (``None``
        if none is); ``hallucination_rate``: hallucinated objects / objects mentioned,
        over all captions (CHAIR-i style; ``None`` when no caption names an object);
        ``hallucinated_caption_rate``: fraction of captions with at least one
        hallucinated object (CHAIR-s style; ``None`` likewise); ``missing_rate``: missing objects / salient
        reference objects, over all images (``None`` when the references name none).
    """
    _check_inputs(predictions, references)
    sums = {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    kind_f1: dict[str, list[float]] = {"object": [], "attribute": [], "relation": []}
    n_halluc = n_objects = n_missing = n_salient = halluc_captions = 0
    for k, pred in predictions.items():
        cand = parse(pred)
        refs = [parse(r) for r in references[k]]
        sg = sg_f1(cand, refs)
        for key in sums:
            sums[key] += sg[key]
        for kind, values in kind_f1.items():
            if sg[f"{kind}_f1"] is not None:
                values.append(sg[f"{kind}_f1"])
        err = object_errors(cand, refs)
        n_halluc += err["n_hallucinated"]
        n_objects += err["n_objects"]
        n_missing += err["n_missing"]
        n_salient += err["n_salient"]
        halluc_captions += err["n_hallucinated"] > 0
    n = len(predictions)
    out: dict[str, float | None] = {
        "SG-P": sums["precision"] / n,
        "SG-R": sums["recall"] / n,
        "SG-F1": sums["f1"] / n,
    }
    for kind, values in kind_f1.items():
        out[f"SG-F1-{kind}"] = sum(values) / len(values) if values else None
    out.update(
        hallucination_rate=n_halluc / n_objects if n_objects else None,  # no object named: no rate, not a perfect one
        hallucinated_caption_rate=halluc_captions / n if n_objects else None,
        missing_rate=n_missing / n_salient if n_salient else None,
    )
    return out


def caption_scores(
    predictions: Mapping[Hashable, str],
    references: Mapping[Hashable, Sequence[str]],
    *,
    scene_graph: bool = True,
) -> dict[str, Any]:
    """All caption metrics of a set of predictions.

    Args:
        predictions: image id -> generated caption.
        references: image id -> reference captions; the same ids as ``predictions``.
        scene_graph: also compute SG-F1 and the object error rates.

    Returns:
        ``BLEU-1``..``BLEU-4``, ``METEOR``, ``ROUGE-L``, ``CIDEr-D`` (``coco_scores``),
        with ``scene_graph`` also the keys of ``scene_graph_scores``, and ``n``.

    Raises:
        ValueError: the ids differ, or a reference list is empty.
        TypeError: a caption is not a string.
        RuntimeError: Java is not installed.
    """
    out: dict[str, Any] = dict(coco_scores(predictions, references))
    if scene_graph:
        out.update(scene_graph_scores(predictions, references))
    out["n"] = len(predictions)
    return out
