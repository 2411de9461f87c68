"""Answer types: where in a model's response the answer of a task's type stands.

A task declares its `answer_type` (a registered name) and, when its gold set is closed, its
candidates: fixed `candidates` (a label set) or `candidates_from` (a registered source: the item's
choices, the animals of its input, ...). The `flexible` extractor (workbench/extract.py) reads a
response through its type; the `strict` one asks the type only whether the task's own parser
returned an answer of it.

Every type first tidies the response the same way, whatever the condition: markdown emphasis
and list marks off, an invented next example ("Input: ...") cut, confidence statements
("Confidence score: 0.95", "(confidence: 0.9)", "- confidence 0.9", "I am 90% confident") removed,
then reads the text after an answer marker ("Answer:", "The answer is", "Classification
decision:", "####") before the rest. A response that names several candidates, or several
numbers joined by "or", gives no answer: leniency must not credit a hedge.

Pure functions over strings; the finders return (answer or None, rule), the rule saying which
reading found it ("none" when nothing of the type was found, "several" for a hedge).
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.registry import Registry
from .metrics import canonical_number, normalize, parse_final_number

if TYPE_CHECKING:
    from ..core.items import TaskItem
    from .task import ScoredTask

Found = tuple[str | None, str]  # (answer or None, the rule that found it)
NOTHING: Found = (None, "none")
HEDGE: Found = (None, "several")


# -- candidates ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """One answer of a closed set: `value` is what the metric scores; `phrases` are the wordings
    that name it inside a sentence, `shorthands` the ones that name it only standing alone."""

    value: str
    phrases: tuple[str, ...]
    shorthands: tuple[str, ...] = ()


CandidateSource = Callable[["ScoredTask", "TaskItem"], tuple[Candidate, ...]]
CANDIDATE_SOURCES: Registry[CandidateSource] = Registry("candidate source")

_OPTION = re.compile(r"^\(([A-Za-z0-9])\)$")  # BIG-bench's "(a)" option labels
_SCALE = re.compile(r"^(\d+)\s*-\s*(\S.*)$")  # "4 - almost perfectly"


class Unparseable(ValueError):
    """The text holds no answer the parser can read (raised by strict parsers)."""


def candidate(value: str, *phrases: str) -> Candidate:
    """A candidate with the wordings every candidate has: itself (without closing punctuation);
    an option label "(b)" also as "option b" and, alone, "b"; a scale point "4 - almost
    perfectly" also as "almost perfectly" and, alone, "4"."""
    own = [value.strip().rstrip(".?!").strip(), *phrases]
    shorthands: list[str] = []
    option, scale = _OPTION.match(value.strip()), _SCALE.match(value.strip())
    if option:
        own += [f"option {option.group(1)}", f"choice {option.group(1)}"]
        shorthands.append(option.group(1))
    if scale:  # "5 - almost perfectly" names two points: its number's and its words'
        own += [scale.group(2), f"{scale.group(1)} -"]
        shorthands.append(scale.group(1))
    return Candidate(value=value, phrases=tuple(dict.fromkeys(p for p in own if p)), shorthands=tuple(shorthands))


@CANDIDATE_SOURCES.register("choices")
def choice_candidates(task: ScoredTask, item: TaskItem) -> tuple[Candidate, ...]:
    """The item's multiple-choice options (none for an item without choices)."""
    return tuple(candidate(c) for c in item.choices)


def _number_variant(word: str) -> str:
    """The other grammatical number of a name's last word ("baboons" <-> "baboon")."""
    if word.endswith("es") and len(word) > 4 and word[-3] in "sxzh":
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word + ("es" if word[-1:] in ("s", "x", "z", "h") else "s")


@CANDIDATE_SOURCES.register("input_list")
def input_list_candidates(task: ScoredTask, item: TaskItem) -> tuple[Candidate, ...]:
    """The comma-separated names of the input ("mirror carp, alligator"), each also in its
    other grammatical number ("baboons" is named by "baboon")."""
    names = [name.strip() for name in item.input.split(",") if name.strip()]
    return tuple(candidate(name, _number_variant(name)) for name in names)


_SENTENCES = re.compile(r"^\s*Sentence 1:\s*(?P<one>.+?)\s*Sentence 2:\s*(?P<two>.+?)\s*$", re.S)


@CANDIDATE_SOURCES.register("sentences")
def sentence_candidates(task: ScoredTask, item: TaskItem) -> tuple[Candidate, ...]:
    """The two sentences of a "Sentence 1: ... Sentence 2: ..." input, also named as "sentence 1"
    and "sentence 2"."""
    match = _SENTENCES.match(item.input)
    if not match:
        return ()
    return (candidate(match.group("one"), "sentence 1", "first sentence"), candidate(match.group("two"), "sentence 2", "second sentence"))


def candidates_of(task: ScoredTask, item: TaskItem) -> tuple[Candidate, ...]:
    """The item's closed answer set: the task's listed labels, or its source's candidates for
    this item; empty when the task's gold set is open (or the item has no choices)."""
    if task.candidates:
        return tuple(candidate(c) for c in task.candidates)
    source = task.candidates_from or ANSWER_TYPES.get(task.answer_type).default_source
    return CANDIDATE_SOURCES.get(source)(task, item) if source else ()


# -- tidying: the same for every type and condition -------------------------------------------------
_EMPHASIS = (
    (re.compile(r"\*\*(.+?)\*\*", re.S), r"\1"),
    (re.compile(r"__(.+?)__", re.S), r"\1"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *x*, not Bürger*innen
    (re.compile(r"`+([^`\n]+)`+"), r"\1"),
    (re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.M), ""),
    (re.compile(r"^[ \t]*[-*•][ \t]+", re.M), ""),  # bullets
)
_ENUMERATED = re.compile(r"^[ \t]*\d{1,2}[.)][ \t]+", re.M)
# A model that goes on to invent the next example of the prompt's format.
_CONTINUATION = re.compile(r"\n[ \t]*(?:input|question|instruction|q)[ \t]*:", re.I)

_VALUE = r"\d+(?:\.\d+)?[ \t]*%?(?:[ \t]*(?:/|out[ \t]+of)[ \t]*\d+(?:\.\d+)?)?"
_RANGE = r"(?:between|from)[ \t]*\d+(?:\.\d+)?[ \t]*(?:-|–|to|and)[ \t]*\d+(?:\.\d+)?"
_LEVEL = r"(?:very[ \t]+)?(?:high|medium|moderate|low)\b"
_CONFIDENCE = (
    # "(confidence: 0.95)", "[certainty 90%]"
    re.compile(r"[ \t]*[(\[][ \t]*(?:with[ \t]+)?(?:a[ \t]+)?(?:my[ \t]+)?(?:confidence|certainty)\b[^)\]\n]*[)\]]", re.I),
    # "Confidence score: 0.9", "- confidence 0.9", ", with a confidence of 90%", "Confidence score:",
    # "The confidence score for this prediction is 0.5", "confidence score between 0-1 is 0.8";
    # the bare word ("certainty" in a word list) stays
    re.compile(
        r"[ \t]*[,;\-–—|]?[ \t]*(?:(?:and|with)[ \t]+)?(?:(?:a|my|the)[ \t]+)?(?:confidence|certainty)"
        r"(?:(?:[ \t]+(?:score|level|rating|value|estimate))?"
        r"(?:[ \t]+(?:for|in|of|on)[ \t]+(?:this|my|the|your)[ \t]+(?:prediction|answer|classification|response|decision))?"
        r"[ \t]*(?:[:=\-]|\bis\b|\bof\b)?[ \t]*"
        rf"(?:{_VALUE}|{_LEVEL}|{_RANGE}(?:[ \t]*(?:is|:|=)[ \t]*{_VALUE})?)"
        r"|[ \t]+(?:score|level|rating|value|estimate)\b[ \t]*:?|[ \t]*:)",
        re.I,
    ),
    # "I am 90% confident", "95% sure", "0.9 confidence"
    re.compile(rf"[ \t]*[,;(\-–—]?[ \t]*(?:I[ \t]*(?:am|'m)[ \t]+)?{_VALUE}[ \t]*(?:confident|sure|certain|confidence)\b[ \t]*\)?", re.I),
    # "32 (0.95)": a probability in brackets after the answer
    re.compile(r"[ \t]*\([ \t]*(?:0?\.\d+|1\.0+)[ \t]*\)"),
    # "Score: 0.9" (the confidence asked for, without the word)
    re.compile(rf"[ \t]*[,;(\-–—]?[ \t]*\bscore[ \t]*[:=][ \t]*{_VALUE}[ \t]*\)?", re.I),
)


_SPACE_BEFORE_END = re.compile(r"[ \t]+([.!?])(?=[ \t]*(?:\n|$))")
_QUOTED = re.compile(r"(?<!\w)([\"“'‘])(.+?)([\"”'’])(?!\w)", re.S)


@functools.lru_cache(maxsize=256)
def tidy(text: str) -> str:
    """The response with markdown, an invented continuation and confidence statements removed.
    Cached: a trial's extractors and its gold-mention check tidy the same response."""
    for pattern, replacement in _EMPHASIS:
        text = pattern.sub(replacement, text)
    if len(_ENUMERATED.findall(text)) >= 2:  # a numbered list; "3. Because ..." alone is an answer
        text = _ENUMERATED.sub("", text)
    cut = _CONTINUATION.search(text)
    if cut and text[: cut.start()].strip():
        text = text[: cut.start()]
    for pattern in _CONFIDENCE:
        text = pattern.sub(" ", text)  # a space keeps the sentence end before a removed clause
    return _SPACE_BEFORE_END.sub(r"\1", text).strip()  # "32 (confidence: 0.9)." -> "32."


def without_echoes(text: str, echoes: Sequence[str], keep: Sequence[str] = ()) -> str:
    """The text without verbatim copies of the prompt's parts (the input, the instruction) and
    without quoted passages of the input (a review quoted back names no label), but for a quoted
    passage inside one of `keep` (a choice the response quotes as its answer, or a title quoted
    within a choice)."""
    for echo in echoes:
        if echo.strip() and _may_contain(text, echo.strip()):
            text = re.sub(re.escape(echo.strip()), " ", text, flags=re.I)
    source = " ".join(" ".join(echoes).lower().split())
    kept = {normalize(k) for k in keep}

    def quoted(match: re.Match[str]) -> str:
        inner = " ".join(match.group(2).lower().split()).strip(string.punctuation + " ")
        inside_kept = any(normalize(inner) in k for k in kept)
        return " " if len(inner.split()) >= 3 and inner in source and not inside_kept else match.group(0)

    return _QUOTED.sub(quoted, text)


def _may_contain(text: str, echo: str) -> bool:
    """False only where `echo` surely does not occur in `text`, case ignored: for ASCII text, where
    case-insensitive matching is plain lower-casing, without compiling a pattern per echo (a new
    one for each example's input)."""
    return not (text.isascii() and echo.isascii()) or echo.lower() in text.lower()


# Answer markers, strongest first: "Answer:", "The answer is", "####"; then labels a model puts
# before its answer ("Classification decision:", "Sentiment:", "Output:"), which also stand in
# echoed prompts (BIG-bench's "choice:" lines), so an answer marker anywhere wins over them.
_MARKERS = (
    re.compile(
        r"(?:\b(?:the[ \t]+)?(?:final[ \t]+|correct[ \t]+|my[ \t]+)?answer[ \t]*"
        r"(?::|=|\bis\b|\bwould[ \t]+be\b|\bwill[ \t]+be\b|\bshould[ \t]+be\b)|####)[ \t]*",
        re.I,
    ),
    re.compile(r"\b(?:output|result|prediction|classification(?:[ \t]+decision)?|decision|label|sentiment|choice)[ \t]*[:=][ \t]*", re.I),
)


def after_marker(text: str) -> str | None:
    """The text after the first answer marker of the strongest kind present, or None."""
    for marker in _MARKERS:
        match = marker.search(text)
        if match:
            return text[match.end() :].strip()
    return None


def scopes(text: str) -> list[tuple[str, str]]:
    """Where to look, in order, with the rule a find there is logged under: after an answer
    marker first, then the whole response."""
    marked = after_marker(text)
    return ([(marked, "marker")] if marked else []) + [(text, "sentence")]


def lines(text: str) -> list[str]:
    """Non-empty lines, without lead-ins that end in a colon ("Here is the antonym:")."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().endswith(":")]


# -- closed sets --------------------------------------------------------------------------------
_BOUNDARY_BEFORE, _BOUNDARY_AFTER = r"(?<![\w-])", r"(?![\w-])"
_NEGATED = re.compile(r"(?:\bnot|\brather[ \t]+than|\binstead[ \t]+of|\bthan|\bnor)[ \t]+(?:(?:the|a|an)[ \t]+)?$", re.I)
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n")
_COPULA = re.compile(r"(?:\b(?:is|are|was|were|would[ \t]+be|will[ \t]+be)\b|:|=)", re.I)
_HEDGE_WORDS = re.compile(r"\b(?:or|either|both|neither)\b", re.I)


@functools.lru_cache(maxsize=4096)  # a task's candidates recur across its items (84 for dyck_languages)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = phrase.split()
    return re.compile(_BOUNDARY_BEFORE + r"\s+".join(map(re.escape, words)) + _BOUNDARY_AFTER, re.I)


def mentions(text: str, candidates: Sequence[Candidate]) -> list[tuple[int, int, str]]:
    """(start, end, value) of each place the text names a candidate: a wording inside a longer
    named one does not count ("same" in "not the same"), nor one after "not" or "than"."""
    spans = [
        (m.start(), m.end(), c.value)
        for c in candidates
        for phrase in c.phrases
        for m in _phrase_pattern(phrase).finditer(text)
    ]
    outer = [s for s in spans if not any(o[0] <= s[0] and s[1] <= o[1] and o[1] - o[0] > s[1] - s[0] for o in spans)]
    return sorted({s for s in outer if not _NEGATED.search(text[: s[0]])})


def _alone(text: str, candidates: Sequence[Candidate]) -> str | None:
    """The candidate the whole text is, ignoring case, spacing and surrounding punctuation."""
    key = normalize(text)
    named = {c.value for c in candidates for form in (*c.phrases, *c.shorthands, c.value) if key and normalize(form) == key}
    return named.pop() if len(named) == 1 else None


def _sentence_spans(text: str, spans: Sequence[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """(start, end) of the sentences of the text; an end inside a named candidate, or the one
    that ends it (a choice that is itself a question), is not a sentence end."""
    bounds, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        at = match.start()
        if any(s < at < e or (at == e and value.rstrip().endswith(text[at])) for s, e, value in spans):
            continue
        bounds.append((start, match.end()))
        start = match.end()
    bounds.append((start, len(text)))
    return [(s, e) for s, e in bounds if text[s:e].strip()]


def _in_sentence(text: str, start: int, end: int, spans: Sequence[tuple[int, int, str]]) -> Found | None:
    """The candidate a sentence gives: the one it names, or, when it names several, the one
    named after its verb ("Of the mouse and the whale, the larger is the whale"), else the
    verb's subject in its clause ("Between the mouse and the whale, the whale is larger"); a
    hedge ("either the whale or the mouse") gives none. None when it names no candidate."""
    inside = [s for s in spans if start <= s[0] < end]
    named = {value for _, _, value in inside}
    if not named:
        return None
    if len(named) == 1:
        return named.pop(), "candidate"
    copulas = list(_COPULA.finditer(text, start, end))
    if copulas and not _HEDGE_WORDS.search(text, start, end):
        verb = copulas[-1]
        after = {value for s, _, value in inside if s >= verb.end()}
        clause_start = max([start] + [m.end() for m in re.finditer(r"[,;]", text[: verb.start()]) if m.end() > start])
        subject = {value for s, e, value in inside if clause_start <= s and e <= verb.start()}
        for slot, rule in ((after, "candidate after verb"), (subject, "subject of verb")):
            if len(slot) == 1:
                return slot.pop(), rule
            if slot:
                break
    return HEDGE


def find_candidate(text: str, candidates: Sequence[Candidate]) -> Found:
    """The candidate a response gives: in the first sentence that names one (questions
    skipped), after an answer marker first."""
    hedged = False
    for scope, rule in scopes(text):
        alone = _alone(scope, candidates) or next((_alone(line, candidates) for line in lines(scope)[:1]), None)
        if alone is not None:
            return alone, f"{rule}: whole"
        spans = mentions(scope, candidates)
        for start, end in _sentence_spans(scope, spans):
            if scope[start:end].rstrip().endswith("?"):
                continue
            found = _in_sentence(scope, start, end, spans)
            if found is HEDGE:
                hedged = True
            elif found is not None:
                return found[0], f"{rule}: {found[1]}"
    return HEDGE if hedged else NOTHING


# -- numbers ------------------------------------------------------------------------------------
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")  # "1,200.5"; "15,17" is two
_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
_NUMBER_WORD = re.compile(
    r"\b(?:(?P<tens>" + "|".join(_TENS) + r")(?:[- ](?P<unit>" + "|".join(_UNITS[1:10]) + r"))?|(?P<small>" + "|".join(_UNITS) + r"))\b",
    re.I,
)
_EXPRESSION = re.compile(r"\d\s*[-+*/×x÷]\s*\d")
_CLAUSE_END = re.compile(r",?\s+(?:which|because|since|but|while)\b|;", re.I)
_NUMBER_COPULA = re.compile(r"\b(?:is|are|was|were|equals|makes|gives|totals?|be|have|has|had)\b|:", re.I)
_ALTERNATIVE = re.compile(r"\bor\b", re.I)


def words_to_digits(text: str) -> str:
    """Number words 0-99 as digits: "forty-seven" -> "47"."""

    def value(match: re.Match[str]) -> str:
        if match.group("small"):
            return str(_UNITS.index(match.group("small").lower()))
        return str(_TENS[match.group("tens").lower()] + (_UNITS.index(match.group("unit").lower()) if match.group("unit") else 0))

    return _NUMBER_WORD.sub(value, text)


def numbers_in(text: str, words: bool = False) -> list[str]:
    """The numbers of a text, canonical ("1,200.0" -> "1200"); with `words`, number words too
    ("three"), where the text has no digits."""
    found = [m.group() for m in _NUMBER.finditer(text)]
    if not found and words:
        found = [m.group() for m in _NUMBER.finditer(words_to_digits(text))]
    out = []
    for raw in found:
        try:
            out.append(canonical_number(raw))
        except ValueError:
            continue
    return out


@functools.lru_cache(maxsize=4096)
def given_numbers(item_input: str, spelled: bool = False) -> tuple[str, ...]:
    """The numbers of an example's input (with `spelled`, its number words read as digits too),
    found once: every trial of the example, and each of its extractors, reads them again."""
    return spoken_numbers(item_input) if spelled else tuple(numbers_in(item_input))


@functools.lru_cache(maxsize=1024)
def spoken_numbers(text: str) -> tuple[str, ...]:
    """The numbers a text states, its number words read as digits. Cached: the gold-mention check
    reads every scored response so, and a run's responses to one task repeat (the simulator's
    12,000 answers to ii/sum are 197 texts)."""
    return tuple(numbers_in(words_to_digits(text)))


def _number_in_sentence(sentence: str, given: Sequence[str]) -> Found | None:
    """The number a sentence answers with: after its last "=", else after its verb ("The sum of
    62 and 92 is 154", "You have three objects"), else the first number it adds to the input's
    (several joined by "or": a hedge); None when it states none (an unfinished sum "12 + 94", an echo of the operands). Number
    words count only after the verb or alone: "the two given numbers" states no answer."""
    if "=" in sentence:
        after = numbers_in(sentence.rsplit("=", 1)[1], words=True)
        return (after[0], "equation") if after else None
    cut = _CLAUSE_END.search(sentence)
    clause = sentence[: cut.start()] if cut else sentence
    if _EXPRESSION.search(clause):
        return None
    verb = _NUMBER_COPULA.search(clause)
    slot_text = clause[verb.end() :] if verb else ""
    slot = numbers_in(slot_text, words=True)
    if slot:
        if len(set(slot)) > 1 and _ALTERNATIVE.search(slot_text):
            return HEDGE
        return slot[0], "after verb"
    values = numbers_in(clause) or (numbers_in(clause, words=True) if len(clause.split()) == 1 else [])
    remaining = list(given)
    new = []
    for value in values:
        if value in remaining:
            remaining.remove(value)
        else:
            new.append(value)
    if len(set(new)) > 1:
        return HEDGE if _ALTERNATIVE.search(clause) else (new[0], "first new number")
    if new:
        return new[0], "number"
    if len(values) == 1:
        return values[0], "number"
    return None


_SENTENCE_BREAK = re.compile(r"\n+|(?<=[.!?])\s+")


def _sentences(text: str) -> list[str]:
    parts = _SENTENCE_BREAK.split(text)
    return [p.strip() for p in parts if p.strip()]


def find_number(text: str, item_input: str) -> Found:
    """A short numeric answer: in the first sentence that states one, after an answer marker first."""
    given = given_numbers(item_input)
    hedged = False
    for scope, rule in scopes(text):
        for sentence in _sentences(scope):
            found = _number_in_sentence(sentence, given)
            if found is HEDGE:
                hedged = True
            elif found is not None:
                return found[0], f"{rule}: {found[1]}"
    return HEDGE if hedged else NOTHING


def find_final_number(text: str) -> Found:
    """The number a worked solution ends with (after "####" or "answer is", else the last)."""
    answer = parse_final_number(text)
    return (answer, "final number") if is_number(answer) else NOTHING


@functools.lru_cache(maxsize=4096)
def number_value(text: str) -> str | None:
    """The canonical value of a text that is one number ("32", "1,200", "-3.50", "eleven"), else None.
    Cached: a run reads the same few answers and golds again in every trial's extractors."""
    for form in (text.strip(), words_to_digits(text.strip().lower())):
        if _NUMBER.fullmatch(form):
            return canonical_number(form)
    return None


def is_number(answer: str) -> bool:
    return number_value(answer) is not None


# -- words, phrases and free text ------------------------------------------------------------------
_PHRASE_END = re.compile(r"\s+\(|\s+[-–—]\s+|;|(?<=[.!?])\s+(?=\S)|,?\s+(?:because|since|as it|as the)\b", re.I)
_TEXT_END = re.compile(
    r"(?<=[.!?])\s+(?=(?i:because|since|this|that|these|explanation|reason|note|i\b|it is|the (?:input|sentence|answer|word|original))\b)"
    r"|\s+(?=(?:Because|Explanation|Reason)\b)"
    r"|\s+\((?=(?i:because|since|as\b|explanation|reason|note))",
)
# A sentence around a short answer: "The opposite of hot is cold.", "Its plural form is 'geese'."
_FRAME = re.compile(
    r"^(?:the|a|an|its?|this|that|my|your|one)\b[^.]*?\b(?:word|opposite|antonym|synonym|plural|singular|letter|translation|rhyme|"
    r"answer|result|output|animal|concept|form|spelling)s?\b[^.]*?\b(?:is|are|would be|will be)\s+(?P<slot>.+)$",
    re.I | re.S,
)
_QUOTES = "\"'“”‘’«»"
_EITHER = re.compile(r"^\s*either\b.+\bor\b", re.I)


def first_answer_line(text: str) -> tuple[str, str] | None:
    """The first answer line and the rule that found it: after a marker, else the first line."""
    for scope, rule in scopes(text):
        found = lines(scope)
        if found:
            return found[0], "marker" if rule == "marker" else "first line"
    return None


def find_phrase(text: str) -> Found:
    """A word or short phrase: the first answer line up to an explanation, unquoted; a sentence
    around it ("The opposite of hot is cold.") gives what follows its verb."""
    line = first_answer_line(text)
    if line is None:
        return NOTHING
    phrase, rule = line
    cut = _PHRASE_END.search(phrase)
    phrase = phrase[: cut.start()] if cut else phrase
    frame = _FRAME.match(phrase)
    if frame:
        phrase, rule = re.sub(r"^(?:the|an?)\s+(?=\S)", "", frame.group("slot").strip(), flags=re.I), "after verb"
    phrase = phrase.strip().rstrip(".!").strip().strip(_QUOTES).strip()
    if _EITHER.match(phrase):
        return HEDGE
    return (phrase, rule) if phrase else NOTHING


def find_text(text: str) -> Found:
    """Free text (a sentence): the first answer line up to an explanation that follows it."""
    line = first_answer_line(text)
    if line is None:
        return NOTHING
    answer, rule = line
    cut = _TEXT_END.search(answer)
    answer = (answer[: cut.start()] if cut else answer).strip()
    return (answer, rule) if answer else NOTHING


# -- the registry -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AnswerType:
    """`find`: the answer in tidied text, given the task and item; `accepts`: whether an answer
    the task's own parser returned is of this type (strict's check); `closed`: the task must
    declare candidates; `default_source`: the candidate source when it declares none; `parses`:
    the task's parser reads what `find` found (a phrase, say), else `find` gives the answer
    itself (a candidate, a canonical number); `tidies`: flexible tidies the response first
    (False: the task's scorer reads the response as it is)."""

    find: Callable[[ScoredTask, TaskItem, str], Found]
    accepts: Callable[[str, Sequence[Candidate]], bool]
    description: str
    closed: bool = False
    default_source: str | None = None
    parses: bool = True
    tidies: bool = True
    numeric: bool = False  # answers are numbers, compared by value
    own_stop: bool = False  # a final full stop belongs to the answer (a sentence), so none is stripped


def _non_empty(answer: str, candidates: Sequence[Candidate]) -> bool:
    return bool(answer.strip())


def _a_candidate(answer: str, candidates: Sequence[Candidate]) -> bool:
    if not candidates:
        return bool(answer.strip())
    return any(normalize(answer) == normalize(c.value) or answer == c.value for c in candidates)


ANSWER_TYPES: Registry[AnswerType] = Registry("answer type")


def echoes(task: ScoredTask, item: TaskItem) -> tuple[str, ...]:
    """The prompt parts a response may copy without answering: the item's input and the instruction."""
    return (item.input, task.instruction)


def _closed(task: ScoredTask, item: TaskItem, text: str) -> Found:
    candidates = candidates_of(task, item)
    if not candidates:
        return find_phrase(text)
    return find_candidate(without_echoes(text, echoes(task, item), [p for c in candidates for p in c.phrases]), candidates)


ANSWER_TYPES.add("label", AnswerType(_closed, _a_candidate, "one label of a closed set, matched against the candidates", closed=True, parses=False))
ANSWER_TYPES.add(
    "choice",
    AnswerType(_closed, _a_candidate, "one of the item's options, matched against them; a word or phrase when the item has none", default_source="choices"),
)
ANSWER_TYPES.add(
    "number",
    AnswerType(
        lambda task, item, text: find_number(without_echoes(text, (item.input,)), item.input),
        lambda answer, _: is_number(answer),
        "a number: the first one a sentence states as its answer; a confidence value never",
        parses=False,
        numeric=True,
    ),
)
ANSWER_TYPES.add(
    "final_number",
    AnswerType(lambda task, item, text: find_final_number(text), lambda answer, _: is_number(answer), "the number a worked solution ends with", parses=False, numeric=True),
)
ANSWER_TYPES.add("phrase", AnswerType(lambda task, item, text: find_phrase(text), _non_empty, "a word or short phrase"))
ANSWER_TYPES.add("text", AnswerType(lambda task, item, text: find_text(text), _non_empty, "free text, such as a sentence", own_stop=True))
ANSWER_TYPES.add(
    "verbatim",
    AnswerType(lambda task, item, text: (text, "verbatim"), _non_empty, "the whole response, read by the task's own parser", tidies=False, own_stop=True),
)
