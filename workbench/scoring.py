"""Answer parsers and metrics, registered by name so task files can name them.

Parsers turn raw model text into an answer; metrics score an answer against the gold targets.
Both run on stored raw text, so a new parser or metric re-scores a log without new model calls.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

from .registry import Registry

Parser = Callable[[str], str]
Metric = Callable[[str, Sequence[str]], float]

PARSERS: Registry[Parser] = Registry("answer parser")
METRICS: Registry[Metric] = Registry("metric")

_ANSWER_PREFIX = re.compile(r"^\s*(?:final answer|answer|output)\s*[:\-]\s*", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def normalize(text: str) -> str:
    """Lower-case, trim, drop surrounding punctuation and collapse whitespace."""
    text = text.strip().lower().strip(string.punctuation + " \t\n\"'“”‘’")
    return " ".join(text.split())


@PARSERS.register("raw")
def parse_raw(text: str) -> str:
    return text.strip()


@PARSERS.register("first_line")
def parse_first_line(text: str) -> str:
    for line in text.strip().splitlines():
        line = _ANSWER_PREFIX.sub("", line).strip()
        if line:
            return line
    return ""


def _canonical_number(literal: str) -> str:
    value = float(literal.replace(",", ""))
    return str(int(value)) if value.is_integer() else repr(value)


@PARSERS.register("number")
def parse_number(text: str) -> str:
    """The first number in the text, canonicalised ("1,200.0" -> "1200"); the stripped text if none."""
    match = _NUMBER.search(text)
    return _canonical_number(match.group()) if match else text.strip()


@PARSERS.register("last_number")
def parse_last_number(text: str) -> str:
    """The last number in the text: models often restate the operands ("8 + 63 = 71") before the result."""
    found = _NUMBER.findall(text)
    return _canonical_number(found[-1]) if found else text.strip()


@METRICS.register("em")
def exact_match(answer: str, targets: Sequence[str]) -> float:
    return float(any(normalize(answer) == normalize(t) for t in targets))


@METRICS.register("contains")
def contains(answer: str, targets: Sequence[str]) -> float:
    norm = normalize(answer)
    return float(any(normalize(t) and normalize(t) in norm for t in targets))


@METRICS.register("f1")
def token_f1(answer: str, targets: Sequence[str]) -> float:
    predicted = normalize(answer).split()
    best = 0.0
    for target in targets:
        gold = normalize(target).split()
        common = sum((Counter(predicted) & Counter(gold)).values())
        if common:
            precision, recall = common / len(predicted), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


@METRICS.register("es")
def exact_set(answer: str, targets: Sequence[str]) -> float:
    """Set equality of comma- or space-separated items (Instruction Induction's `es`)."""

    def items(text: str) -> frozenset[str]:
        return frozenset(normalize(part) for part in re.split(r"[,\s]+", text) if normalize(part))

    return float(any(items(answer) == items(t) for t in targets))
