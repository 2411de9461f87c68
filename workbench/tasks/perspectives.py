"""`perspectives/*`: open questions for multiplexity studies, scored by a Perspectives
Distribution Score (PDS) and its entropy.

The published PDS formula (Mushtaq et al. 2025, arXiv:2501.03259) was NOT FOUND. This is the
workbench's own operationalisation, following the outline protocols.md (section 6) marks as an
assumption:

1. A rubric fixes K perspectives (tasks/rubrics/perspectives.yaml: K = 9 worldviews, the
   workbench's list, replaceable by another `tags` rubric).
2. A judge model reads each response and lists the perspectives it substantively represents
   (explains or applies, not merely names): a set T of labels per trial. The trial's score is
   its coverage |T| / K; its `answer` is the sorted labels joined by commas ("" for none).
3. PDS, per model and condition, is the distribution over the K perspectives of all tags,
   aggregated over questions and repeats: p_k = c_k / sum_j c_j, where c_k counts the responses
   tagged with perspective k.
4. PDS entropy = H(p) / log K, in percent (0 %: every tag is one perspective; 100 %: all K
   perspectives equally often). Undefined (None) when no response carries a tag.

Errored trials (unreadable verdicts, failed calls) count in `n` and `errors`, never as tags.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..scoring.scorers import ScoreCase, Unparseable
from .judge import RUBRIC_KINDS, Rubric, builtin_rubrics

NONE = "NONE"


class TagsKind:
    slots = frozenset({"labels"})

    def validate(self, rubric: Rubric) -> None:
        if rubric.options:
            raise ValueError("a tags rubric has labels, not options")
        if any(label.label.upper() == NONE for label in rubric.labels):
            raise ValueError(f"{NONE} is the verdict for no label and cannot be a label")

    def prompt(self, rubric: Rubric, case: ScoreCase) -> tuple[dict[str, str], dict[str, Any]]:
        return {"labels": "\n".join(f"- {label.label}: {label.description}" for label in rubric.labels)}, {}

    def read(self, rubric: Rubric, verdict: str, state: dict[str, Any]) -> tuple[str, float]:
        known = {label.label.lower(): label.label for label in rubric.labels}
        tokens = [t.strip().strip("\"'`*.[]").lower() for t in re.split(r"[,;\n]", verdict)]
        tokens = [t for t in tokens if t]
        if tokens == [NONE.lower()]:
            return "", 0.0
        unknown = [t for t in tokens if t not in known]
        if not tokens or unknown:
            raise Unparseable(f"verdict {verdict!r} names unknown perspective(s) {unknown} (known: {', '.join(known.values())}, or {NONE})")
        tags = sorted({known[t] for t in tokens})
        return ",".join(tags), len(tags) / len(rubric.labels)

    def expected(self, rubric: Rubric, case: ScoreCase, state: dict[str, Any]) -> str:
        text = case.text.lower()
        tags = [
            label.label
            for label in rubric.labels
            if any(re.search(r"\b" + re.escape(word.lower()) + r"\b", text) for word in label.keywords)
        ]
        return rubric.verdict_line(", ".join(tags) if tags else NONE)


RUBRIC_KINDS.add("tags", TagsKind())


@dataclass(frozen=True)
class PDS:
    labels: tuple[str, ...]
    counts: dict[str, int]
    distribution: dict[str, float] | None
    entropy_pct: float | None


def perspectives_distribution(tag_sets: Iterable[Iterable[str]], labels: Sequence[str]) -> PDS:
    """PDS and its normalised entropy (in %) over K = len(labels) perspectives."""
    counts = Counter(tag for tags in tag_sets for tag in set(tags))
    unknown = set(counts) - set(labels)
    if unknown:
        raise ValueError(f"tags {sorted(unknown)} are not among the {len(labels)} perspectives")
    total = sum(counts.values())
    full = {label: counts.get(label, 0) for label in labels}
    if total == 0:
        return PDS(tuple(labels), full, None, None)
    distribution = {label: c / total for label, c in full.items()}
    entropy = -sum(p * math.log(p) for p in distribution.values() if p > 0)
    return PDS(tuple(labels), full, distribution, 100.0 * entropy / math.log(len(labels)) if len(labels) > 1 else 0.0)
