"""Answer parsers and metrics, registered by name so task files can name them.

Parsers turn raw model text into an answer (a task may pass them keyword arguments, its
`parser_args`); choice matchers map an answer onto one of a multiple-choice item's options;
metrics score an answer against the gold targets (a metric marked `@item_aware` also receives
the item). All run on stored raw text, so a new one re-scores a log without new model calls.
"""

from __future__ import annotations

import functools
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..core.registry import Registry

Parser = Callable[..., str]  # (text, **parser_args) -> answer
Metric = Callable[..., float]  # (answer, targets) -> score in [0, 1]; item-aware ones also get item=
ChoiceMatcher = Callable[[str, Sequence[str]], str]  # (answer, choices) -> the choice it names, else answer

PARSERS: Registry[Parser] = Registry("answer parser")
METRICS: Registry[Metric] = Registry("metric")
CHOICE_MATCHERS: Registry[ChoiceMatcher] = Registry("choice matcher")

F = TypeVar("F", bound=Callable[..., Any])


CORRECT_FROM = 1.0 - 1e-9  # a metric's full marks may carry float noise (a mean of per-target scores, say)


def is_correct(score: Any) -> Any:
    """Whether a score counts as a correct answer: a float gives a bool, a pandas Series or DataFrame
    of scores booleans elementwise. The one cut-off for the oracle verifier, the judge's reference
    check and the per-round accuracy."""
    return score >= CORRECT_FROM


def item_aware(metric: F) -> F:
    """Mark a metric that needs the item (its input or choices), called as metric(answer, targets, item=item)."""
    metric.wants_item = True  # type: ignore[attr-defined]
    return metric

_ANSWER_PREFIX = re.compile(r"^\s*(?:final answer|answer|output)\s*[:\-]\s*", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


_SURROUNDING = string.punctuation + " \t\n\"'“”‘’"


@functools.lru_cache(maxsize=65_536)
def normalize(text: str) -> str:
    """Lower-case, trim, drop surrounding punctuation and collapse whitespace. Cached: every
    trial of an example normalises its gold again."""
    text = text.strip().lower().strip(_SURROUNDING)
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


@functools.lru_cache(maxsize=65_536)
def canonical_number(text: str) -> str:
    """"1,200.0" -> "1200", "-3.50" -> "-3.5": one spelling per number, so em compares values."""
    value = float(text.replace(",", ""))
    return str(int(value)) if value.is_integer() else repr(value)


@PARSERS.register("number")
def parse_number(text: str) -> str:
    """The first number in the text, canonicalised ("1,200.0" -> "1200"); the stripped text if none."""
    match = _NUMBER.search(text)
    return canonical_number(match.group()) if match else text.strip()


@PARSERS.register("last_number")
def parse_last_number(text: str) -> str:
    """The last number in the text: models often restate the operands ("8 + 63 = 71") before the result."""
    found = _NUMBER.findall(text)
    return canonical_number(found[-1]) if found else text.strip()


_HASHES = re.compile(r"####")
_ANSWER_MARKERS = re.compile(r"answer is|answer:", re.IGNORECASE)


@PARSERS.register("final_number")
def parse_final_number(text: str) -> str:
    """The answer of a worked solution: the first number after the first `####` (a model that
    goes on to invent another problem does not move it), else after the last "answer is" or
    "Answer:", else the last number in the text; canonicalised, or the stripped text if none."""
    markers = list(_HASHES.finditer(text))[:1] or list(_ANSWER_MARKERS.finditer(text))[-1:]
    if markers:
        match = _NUMBER.search(text, markers[0].end())
        if match:
            return canonical_number(match.group())
    return parse_last_number(text)


@PARSERS.register("bigbench")
def parse_bigbench(text: str, stop_string: str | None = None, output_regex: str | None = None) -> str:
    """BIG-bench's generative post-processing on a chat answer: the first answer line, cut after the
    task's `stop_string`, then the first match of its `output_regex` ("" if none), as
    bigbench.models.model_utils.postprocess_output does. The task file's own stop_string and
    output_regex apply; BIG-bench's fallback regex for tasks without either (first sentence,
    cut at . ? ! ;) does not, because it cuts gold answers that end in a full stop (see README)."""
    answer = parse_first_line(text)
    if stop_string:
        index = answer.find(stop_string)
        if index > 0:
            answer = answer[: index + len(stop_string)]
    if output_regex:
        answer = next(iter(re.findall(output_regex, answer)), "")
    return answer.strip()


_NUMBER_WORD_PUNCT = re.compile(r"[,\-]")


@PARSERS.register("number_words")
def parse_number_words(text: str) -> str:
    """An English number in one spelling: lower case, no hyphens, commas or "and"
    ("One thousand, two hundred and thirty-four" -> "one thousand two hundred thirty four")."""
    words = _NUMBER_WORD_PUNCT.sub(" ", parse_first_line(text).lower().strip(string.punctuation + " ")).split()
    return " ".join(w for w in words if w != "and")


@CHOICE_MATCHERS.register("label_or_text")
def match_choice(answer: str, choices: Sequence[str]) -> str:
    """The choice an answer names: the one it equals (ignoring case and spacing, then also
    surrounding punctuation), else the only choice that appears in it as a phrase (a choice inside
    a longer one that also appears does not count: "non-entailment" names only itself). An answer
    naming none or several stays as it is."""
    for key in (_fold, normalize):
        equal = [c for c in choices if key(c) and key(c) == key(answer)]
        if len(equal) == 1:
            return equal[0]
    text = _fold(answer)
    spans: list[tuple[int, int, str]] = []
    for choice in choices:
        if _fold(choice):
            pattern = r"(?<![\w-])" + re.escape(_fold(choice)) + r"(?![\w-])"
            spans += [(m.start(), m.end(), choice) for m in re.finditer(pattern, text)]
    named = {c for s, e, c in spans if not any(s2 <= s and e <= e2 and e2 - s2 > e - s for s2, e2, _ in spans)}
    return named.pop() if len(named) == 1 else answer


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


@METRICS.register("em")
def exact_match(answer: str, targets: Sequence[str]) -> float:
    said = normalize(answer)
    return float(any(said == normalize(t) for t in targets))


@METRICS.register("contains")
def contains(answer: str, targets: Sequence[str]) -> float:
    """A target in the answer as whole words, as the original `contains` matches it (a word
    boundary on each side; see np.contains in scoring_profiles.py): "large" is in "big, large",
    not in "largest"."""
    norm = normalize(answer)
    return float(any(normalize(t) and re.search(r"(?<!\w)" + re.escape(normalize(t)) + r"(?!\w)", norm) for t in targets))


@METRICS.register("f1")
def token_f1(answer: str, targets: Sequence[str], normalizer: Callable[[str], str] = normalize) -> float:
    """The best token F1 of the answer against any target (SQuAD-style, after `normalizer`)."""
    predicted = normalizer(answer).split()
    best = 0.0
    for target in targets:
        gold = normalizer(target).split()
        common = sum((Counter(predicted) & Counter(gold)).values())
        if common:
            best = max(best, 2 * common / (len(predicted) + len(gold)))
    return best


def answer_in_targets(answer: str, targets: Sequence[str]) -> float:
    """The answer is one of the targets, exactly. As `exact_str_match` this is BIG-bench's metric
    on the post-processed answer; as `multiple_choice_grade` it grades the choice the answer names
    (BIG-bench grades by the argmax of the choices' log-probabilities, which chat APIs do not give,
    so the generated answer is matched to a choice instead)."""
    return float(answer in targets)


METRICS.add("exact_str_match", answer_in_targets)
METRICS.add("multiple_choice_grade", answer_in_targets)


@METRICS.register("es")
def exact_set(answer: str, targets: Sequence[str]) -> float:
    """Set equality of comma- or space-separated items (Instruction Induction's `es`)."""

    def items(text: str) -> frozenset[str]:
        return frozenset(normalize(part) for part in re.split(r"[,\s]+", text) if normalize(part))

    return float(any(items(answer) == items(t) for t in targets))
