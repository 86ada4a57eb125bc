"""CIDEr-D with document frequencies fitted once, for SCST rewards on single captions.

pycocoevalcap's ``Cider`` computes the document frequencies (df) from the references
it is given on each call, so one image scored alone gets idf = log(1/1) = 0 for every
n-gram and a score of 0. ``CiderD`` fits the df once on the training references
(``CiderD.fit``), keeps them (``save``/``load`` as JSON) and scores any caption
against its references with them.

The arithmetic follows pycocoevalcap's ``cider_scorer`` (the coco-caption CIDEr-D)
exactly: n-grams n = 1..4, tf-idf vectors with idf = log(N) - log(max(1, df)) where
N is the number of images the df were fitted on, the candidate's tf-idf clipped by
the reference's, a Gaussian length penalty with sigma = 6, the mean over n, the mean
over references, times 10. Like the reference code, the "length" in the penalty is
the number of bigrams (words - 1), kept for comparability.

Tokenisation: lower case, every run of characters other than letters and digits
(punctuation, ``_``, white space) separates words; deterministic, no Java. This is not
pycocoevalcap's ``PTBTokenizer``: lower-case, space-separated words of letters and digits
pass unchanged, but PTB keeps a hyphen or an apostrophe inside a token (``tree-lined``,
``'s``, ``n't``) and this splits there (``tree lined``, ``s``, ``n t``), so on such
captions the score differs from pycocoevalcap's. The evaluation
(:func:`aerith.eval.caption_scores`) runs pycocoevalcap itself.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from aerith.atomic import atomic_write_text

_WORD = re.compile(r"[^\W_]+")
_FORMAT = "aerith-cider-d"

NGram = tuple[str, ...]


def tokenize(text: str) -> list[str]:
    """Lower-case words of ``text``, punctuation stripped."""
    return _WORD.findall(text.lower())


def _ngrams(words: Sequence[str], n: int) -> Counter[NGram]:
    counts: Counter[NGram] = Counter()
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i : i + k])] += 1
    return counts


class _Vector:
    """tf-idf vector of one caption, split by n-gram order, with norms and length."""

    __slots__ = ("length", "norm", "vec")

    def __init__(self, counts: Counter[NGram], cider: CiderD) -> None:
        self.vec: list[dict[NGram, float]] = [{} for _ in range(cider.n)]
        squares = [0.0] * cider.n
        self.length = 0
        for ngram, tf in counts.items():
            k = len(ngram) - 1
            value = float(tf) * (cider.log_num_documents - math.log(max(1.0, cider.df.get(ngram, 0.0))))
            self.vec[k][ngram] = value
            squares[k] += value**2
            if k == 1:
                self.length += tf
        self.norm = [math.sqrt(s) for s in squares]


class CiderD:
    """CIDEr-D with fixed document frequencies.

    Args:
        document_frequency: n-gram -> number of images whose references contain it.
        num_documents: the number of images the frequencies were counted over.
        n: the largest n-gram order.
        sigma: standard deviation of the Gaussian length penalty.
    """

    def __init__(
        self,
        document_frequency: Mapping[NGram, float],
        num_documents: int,
        *,
        n: int = 4,
        sigma: float = 6.0,
    ) -> None:
        if num_documents < 1:
            raise ValueError(f"num_documents must be >= 1, got {num_documents}")
        if n < 1 or sigma <= 0:
            raise ValueError(f"need n >= 1 and sigma > 0, got n={n}, sigma={sigma}")
        self.df = dict(document_frequency)
        self.num_documents = num_documents
        self.log_num_documents = math.log(float(num_documents))
        self.n = n
        self.sigma = sigma

    @classmethod
    def fit(cls, references: Iterable[Sequence[str]], *, n: int = 4, sigma: float = 6.0) -> CiderD:
        """Count document frequencies over the reference captions of each training image.

        Args:
            references: per image, its reference captions.
        """
        df: Counter[NGram] = Counter()
        num = 0
        for i, refs in enumerate(references):
            if isinstance(refs, str):
                raise TypeError(f"references[{i}] is a string; pass a list of reference captions per image")
            num += 1
            df.update({g for ref in refs for g in _ngrams(tokenize(ref), n)})
        if num == 0:
            raise ValueError("CiderD.fit needs at least one image's references")
        return cls({g: float(c) for g, c in df.items()}, num, n=n, sigma=sigma)

    def save(self, path: str | Path) -> Path:
        """Write the fitted frequencies as JSON, atomically (temp file + ``os.replace``)."""
        data = {
            "format": _FORMAT,
            "version": 1,
            "n": self.n,
            "sigma": self.sigma,
            "num_documents": self.num_documents,
            "document_frequency": {" ".join(g): c for g, c in sorted(self.df.items())},
        }
        return atomic_write_text(path, json.dumps(data, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> CiderD:
        """Read frequencies written by ``save``."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8
            raise ValueError(f"{path}: cannot read CIDEr-D document frequencies: {e}") from e
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a CIDEr-D document-frequency file (format {_FORMAT!r} expected)")
        field = "document_frequency"
        try:
            df = {tuple(k.split(" ")): float(v) for k, v in data[field].items()}
            bad = next(((g, v) for g, v in df.items() if not (math.isfinite(v) and v >= 0)), None)
            if bad is not None:
                raise ValueError(f"n-gram {' '.join(bad[0])!r} has {bad[1]}, not a count >= 0")
            field = "num_documents, n or sigma"
            return cls(df, int(data["num_documents"]), n=int(data["n"]), sigma=float(data["sigma"]))
        except (KeyError, AttributeError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: malformed CIDEr-D file, field {field}: {type(e).__name__}: {e}") from e

    def _vector(self, text: str) -> _Vector:
        return _Vector(_ngrams(tokenize(text), self.n), self)

    def _sim(self, hyp: _Vector, ref: _Vector) -> float:
        """Sum over n-gram orders of the clipped, length-penalised cosine similarity."""
        delta = float(hyp.length - ref.length)
        penalty = math.exp(-(delta**2) / (2 * self.sigma**2))
        total = 0.0
        for k in range(self.n):
            ref_vec = ref.vec[k]
            val = 0.0
            for ngram, h in hyp.vec[k].items():
                r = ref_vec.get(ngram, 0.0)
                val += min(h, r) * r
            if hyp.norm[k] != 0 and ref.norm[k] != 0:
                val /= hyp.norm[k] * ref.norm[k]
            total += val * penalty
        return total

    def _score_vectors(self, hyp: _Vector, refs: Sequence[_Vector]) -> float:
        total = sum(self._sim(hyp, ref) for ref in refs)
        return total / self.n / len(refs) * 10.0

    def score(self, candidate: str, references: Sequence[str]) -> float:
        """CIDEr-D of one caption against its references (0-10 scale, like pycocoevalcap)."""
        if isinstance(references, str) or not references:
            raise ValueError("references must be a non-empty list of captions")
        return self._score_vectors(self._vector(candidate), [self._vector(r) for r in references])

    def score_batch(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
        """CIDEr-D of each candidate against its own references.

        Reference lists repeated in the batch (the K samples of one image in SCST) are
        vectorised once.
        """
        if len(candidates) != len(references):
            raise ValueError(
                f"candidates and references differ in length: {len(candidates)} != {len(references)}"
            )
        cache: dict[tuple[str, ...], list[_Vector]] = {}
        scores = []
        for i, (cand, refs) in enumerate(zip(candidates, references, strict=True)):
            if isinstance(refs, str) or not refs:
                raise ValueError(f"references[{i}] must be a non-empty list of captions")
            key = tuple(refs)
            if key not in cache:
                cache[key] = [self._vector(r) for r in refs]
            scores.append(self._score_vectors(self._vector(cand), cache[key]))
        return scores
