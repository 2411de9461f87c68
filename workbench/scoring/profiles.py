"""Scorer profile `negativeprompt-v1`: the NegativePrompt code's task-specific answer scoring.

The NegativePrompt repository (github.com/wangxu0820/NegativePrompt @ 9e7dc40, utility.py and
exec_accuracy.py) scores Instruction Induction answers with per-task normalisation, and its
accuracies depend on it (protocols.md, section 2). This module re-implements that behaviour as
registered metrics, written for the workbench from a reading of the code (not copied); a study
selects it per task with `scorer: negativeprompt-v1` (tasks/ii.yaml maps tasks to these metrics).

Deviations, on purpose:
- the model-specific branches for T5, Bloom and Bard in larger_animal are left out (they depend
  on the model's name, not the answer);
- the first post-processing loop of exec_accuracy.py rebinds a local variable and never reaches
  the scores, so it is not reproduced; its answer rewriting for cause_and_effect and larger_animal
  ("Sentence i: ...", "Animal i: ...") does reach them and is reproduced;
- the `contains` pattern is built from the normalised gold answer, which has no punctuation left,
  so escaping it changes nothing but guards against regex syntax.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Sequence
from typing import Any

from .metrics import METRICS, item_aware, token_f1

PROFILE = "negativeprompt-v1"
_PUNCT = str.maketrans("", "", string.punctuation)
_CONTRACTIONS = (("don't", "do not"), ("can't", "cannot"), ("doesn't", "does not"), ("wasn't", "was not"), ("weren't", "were not"))


def np_normalize(text: str) -> str:
    """The code's normalize_prediction: drop " and " and sentence labels, expand five contractions,
    keep the first line up to the first full stop, lower-case, hyphens to spaces, no punctuation."""
    text = text.replace(" and ", " ").replace("Sentence 1:", " ").replace("Sentence 2:", " ")
    for short, long in _CONTRACTIONS:
        text = text.replace(short, long)
    text = text.strip().split("\n")[0].split(".")[0].lower()
    return text.replace("-", " ").translate(_PUNCT)


def _clean_list(text: str, drop: Sequence[str]) -> list[str]:
    """The list cleaning of the starts_with / letters_list scorers: separators to spaces, no
    punctuation or digits, split on whitespace."""
    text = text.lower()
    for phrase in drop:
        text = text.replace(phrase, "")
    for sep in (",", ".", "-"):
        text = text.replace(sep, " ")
    return re.sub(r"\d+", "", text.translate(_PUNCT)).split()


def _any(check: Callable[[str, str], bool]) -> Callable[[str, Sequence[str]], float]:
    """A metric that scores 1 when the answer passes `check` against any accepted target."""

    def metric(answer: str, targets: Sequence[str]) -> float:
        return float(any(check(answer, target) for target in targets))

    return metric


def _em(answer: str, gold: str) -> bool:
    return np_normalize(answer) == np_normalize(gold)


def _contains_em(answer: str, gold: str) -> bool:
    return np_normalize(gold) in np_normalize(answer)


def _sentiment_word(word: str) -> str:
    if word in ("neg", "pos"):
        return {"neg": "negative", "pos": "positive"}[word]
    if word.lstrip("-").isdigit() and word not in ("", "-"):
        return "positive" if int(word) > 0 else "negative"
    return word


def _sentiment(answer: str, gold: str) -> bool:
    text = answer.replace("-", " ").translate(_PUNCT).strip().lower()
    if "positive" in text and "negative" in text:
        return False
    if "positive" in text:
        text = "positive"
    elif "negative" in text:
        text = "negative"
    words = text.split()
    if len(words) == 1:
        text = _sentiment_word(text)
    elif len(words) > 1:
        first = _sentiment_word(words[0].strip())
        if first in ("positive", "negative"):
            text = first
        elif "positiv" in text:
            text = "positive"
        elif "negativ" in text:
            text = "negative"
    return gold in text


def _sentence_similarity(answer: str, gold: str) -> bool:
    wanted = gold.split()[0] if gold.split() else ""
    for word in answer.replace("-", " ").translate(_PUNCT).strip().lower().split():
        if word.isdigit():
            return word[0] == wanted
    return False


_SAME = ("true", "yes", "1", "10", "same", "match", "similar")
_DIFFERENT = ("false", "no", "0", "00", "different", "not", "opposite")


def _word_in_context(answer: str, gold: str) -> bool:
    text = answer.strip().lower()
    if text.split():
        first = text.split()[0].replace("-", " ").translate(_PUNCT).strip()
        if first in _SAME or "same" in first:
            text = "same"
        elif first in _DIFFERENT or "different" in first:
            text = "not the same"
        elif "different" in text:
            text = "same" if "not" in text else "not the same"
        elif "same" in text:
            text = "not the same" if "not" in text else "same"
    return text == gold


def _starts_with(answer: str, gold: str) -> bool:
    return set(_clean_list(answer, ("confidence score:", "score:"))) == set(gold.split())


def _letters_list(answer: str, gold: str) -> bool:
    return _clean_list(answer, ("confidence score:",)) == gold.split()


def _exact_set(answer: str, gold: str) -> bool:
    words = set(np_normalize(answer).split())
    return words == set(np_normalize(gold).split()) or words == set(np_normalize(gold).split(","))


def _rhymes(answer: str, gold: str) -> bool:
    return any(word.strip() == np_normalize(gold) for word in np_normalize(answer).split())


def _contains(answer: str, gold: str) -> bool:
    return re.search(r"\b(" + re.escape(np_normalize(gold)) + r")\b", np_normalize(answer)) is not None


def _word_letter(answer: str, gold: str) -> bool:
    """first/second_word_letter: the text after the first "is" (or "would be") contains the
    letter; without either, exact match."""
    for marker in ("is", "would be"):
        if marker in answer:
            rest = answer[answer.find(marker) + len(marker) :]
            return bool(rest) and _contains_em(rest, gold)
    return _em(answer, gold)


def _labelled_gold(parts: Sequence[str], gold: str, label: str, base: int) -> str:
    """The code rewrites a gold answer as "<label> <i>: gold" by the first input part holding it."""
    for index, part in enumerate(parts):
        if gold.lower() in part.lower():
            return f"{label} {index + base}: {gold}"
    return gold


@item_aware
def cause_and_effect(answer: str, targets: Sequence[str], item: Any) -> float:
    """Right when any part of "Sentence i: cause" (the label or the cause, without full stops)
    appears in the answer."""
    sentences = [s + "." for s in item.input.split(".")]
    for target in targets:
        for part in _labelled_gold(sentences, target, "Sentence", 1).split(":"):
            if part.strip().lower().replace(".", "") in answer.lower():
                return 1.0
    return 0.0


@item_aware
def larger_animal(answer: str, targets: Sequence[str], item: Any) -> float:
    """Right when the answer (before "larger ... than" and any "confidence") holds the gold
    "Animal i: name" or its last word; the code's digit rules then also credit bare indices."""
    text = answer.lower()
    if "larger" in text and "than" in text:
        text = text[: text.find("larger")]
    if "confidence" in text:
        text = text[: text.find("confidence")].strip()
    for target in targets:
        gold = _labelled_gold(item.input.split(","), target, "Animal", 0).strip().lower()
        words = gold.split()
        if gold in text or (len(words) > 1 and words[-1].strip() in text):
            return 1.0
        if (text == "0" and "0" in gold) or (text == "1" and "1" in gold):
            return 1.0
        if ("1" in gold and ("1.0" in text or "1" in text or "2" in text)) or ("0" in gold and ("0.0" in text or "0" in text)):
            return 1.0
    return 0.0


for _name, _check in {
    "em": _em,
    "contains_em": _contains_em,
    "sentiment": _sentiment,
    "sentence_similarity": _sentence_similarity,
    "word_in_context": _word_in_context,
    "starts_with": _starts_with,
    "letters_list": _letters_list,
    "es": _exact_set,
    "rhymes": _rhymes,
    "contains": _contains,
    "word_letter": _word_letter,
}.items():
    METRICS.add(f"np.{_name}", _any(_check))
METRICS.add("np.f1", functools.partial(token_f1, normalizer=np_normalize))
METRICS.add("np.cause_and_effect", cause_and_effect)
METRICS.add("np.larger_animal", larger_animal)
