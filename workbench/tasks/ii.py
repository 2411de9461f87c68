"""Instruction Induction (Honovich et al. 2022): generators for the tasks whose answers can be
generated with certainty, and a loader for the original `induce`/`execute` JSON files.

Generated items use the input formats of the original data (e.g. "22 10" for sum, "sentence [t]"
for orthography_starts_with) over the workbench's own word lists (tasks/data/ii_words.yaml).
"""

from __future__ import annotations

import functools
import math
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any


from ..core.errors import UserError
from ..core.input_files import load_json, load_yaml
from ..core.paths import data_dir
from ..core.registry import Registry
from . import CAPACITY, SOURCES, TaskItem, TaskSpec, seeded_order
from .generators import Example, register_drawn, register_enumerated


@functools.cache
def word_lists() -> dict[str, Any]:
    return load_yaml(data_dir("tasks") / "data" / "ii_words.yaml")


def _args_range(spec: TaskSpec, low: int, high: int) -> range:
    return range(spec.source_args.get("low", low), spec.source_args.get("high", high) + 1)


# -- arithmetic ---------------------------------------------------------------------------------
def _sum_domain(spec: TaskSpec) -> list[Example]:
    numbers = _args_range(spec, 0, 99)
    return [(f"{a} {b}", (str(a + b),)) for a in numbers for b in numbers]


def _diff_domain(spec: TaskSpec) -> list[Example]:
    """The second number is never larger than the first, so answers are non-negative."""
    numbers = _args_range(spec, 0, 99)
    return [(f"{a} {b}", (str(a - b),)) for a in numbers for b in numbers if b <= a]


_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_in_words(n: int) -> str:
    """British style, as in the original data: 1234 -> "one thousand, two hundred and thirty-four"."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return f"{_ONES[n // 100]} hundred" + (f" and {number_in_words(rest)}" if rest else "")
    if n < 1_000_000:
        thousands, rest = divmod(n, 1000)
        head = f"{number_in_words(thousands)} thousand"
        if not rest:
            return head
        return f"{head}, {number_in_words(rest)}" if rest >= 100 else f"{head} and {number_in_words(rest)}"
    raise ValueError("numbers up to 999,999 only")


def _num_to_verbal_domain(spec: TaskSpec) -> list[Example]:
    return [(str(n), (number_in_words(n),)) for n in _args_range(spec, 1, 9999)]


# -- words ----------------------------------------------------------------------------------------
def _word_domain(answer: Callable[[str], str]) -> Callable[[TaskSpec], list[Example]]:
    return lambda spec: [(w, (answer(w),)) for w in word_lists()["words"]]


def _plural_domain(spec: TaskSpec) -> list[Example]:
    return [(entry[0], tuple(entry[1:])) for entry in word_lists()["plurals"]]


def _larger_animal_domain(spec: TaskSpec) -> list[Example]:
    masses = word_lists()["animal_mass_kg"]
    ratio = spec.source_args.get("min_ratio", 10)
    return [
        (f"{a}, {b}", (a if masses[a] > masses[b] else b,))
        for a in masses
        for b in masses
        if a != b and max(masses[a], masses[b]) >= ratio * min(masses[a], masses[b])
    ]


_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")


def _starts_with_domain(spec: TaskSpec) -> list[Example]:
    """Each sentence with each letter that begins one of its words; the answer is every word
    starting with that letter, lower-cased, in order, once each."""
    out = []
    for sentence in word_lists()["sentences"]:
        words = [w.lower() for w in _WORD.findall(sentence)]
        for letter in sorted({w[0] for w in words}):
            chosen = list(dict.fromkeys(w for w in words if w[0] == letter))
            out.append((f"{sentence} [{letter}]", (" ".join(chosen),)))
    return out


def _negation_domain(spec: TaskSpec) -> list[Example]:
    return [
        (f"{subject} {aux} {rest}.", (f"{subject} {aux} not {rest}.",))
        for group in word_lists()["negation"]
        for subject in group["subjects"]
        for aux, rest in group["predicates"]
    ]


def _passive_domain(spec: TaskSpec) -> list[Example]:
    return [
        (f"The {agent} {verb} the {patient}.", (f"The {patient} was {verb} by the {agent}.",))
        for group in word_lists()["passive"]
        for agent in group["agents"]
        for verb in group["verbs"]
        for patient in group["patients"]
        if agent != patient
    ]


register_enumerated("ii.sum", _sum_domain)
register_enumerated("ii.diff", _diff_domain)
register_enumerated("ii.num_to_verbal", _num_to_verbal_domain)
register_enumerated("ii.first_word_letter", _word_domain(lambda w: w[0]))
register_enumerated("ii.second_word_letter", _word_domain(lambda w: w[1]))
register_enumerated("ii.letters_list", _word_domain(lambda w: " ".join(w)))
register_enumerated("ii.singular_to_plural", _plural_domain)
register_enumerated("ii.larger_animal", _larger_animal_domain)
register_enumerated("ii.orthography_starts_with", _starts_with_domain)
register_enumerated("ii.negation", _negation_domain)
register_enumerated("ii.active_to_passive", _passive_domain)


# -- taxonomy_animal: a random draw (the domain is too large to list) ----------------------------
def _taxonomy_draw(rng: random.Random, args: dict) -> Example:
    lists = word_lists()["taxonomy"]
    n_animals = rng.choice(args.get("animals", [3, 4]))
    n_others = rng.choice(args.get("others", [2, 3]))
    animals = rng.sample(lists["animals"], n_animals)
    others = rng.sample([w for words in lists["others"].values() for w in words], n_others)
    words = animals + others
    rng.shuffle(words)
    rng.shuffle(animals)
    return ", ".join(words), (", ".join(animals),)


def _taxonomy_capacity(spec: TaskSpec) -> int:
    lists = word_lists()["taxonomy"]
    n_animals, n_others = len(lists["animals"]), sum(len(w) for w in lists["others"].values())
    return sum(
        math.comb(n_animals, a) * math.comb(n_others, o) * math.factorial(a + o)
        for a in spec.source_args.get("animals", [3, 4])
        for o in spec.source_args.get("others", [2, 3])
    )


register_drawn("ii.taxonomy_animal", _taxonomy_draw, _taxonomy_capacity)


# -- the original JSON files ------------------------------------------------------------------------
Reader = Callable[[dict[str, Any], random.Random, dict[str, Any]], Example]
READERS: Registry[Reader] = Registry("Instruction Induction example reader")


def _field_text(example: dict[str, Any], name: str) -> Any:
    if name not in example:
        raise KeyError(name)
    return example[name]


@READERS.register("field")
def read_field(example: dict[str, Any], rng: random.Random, args: dict[str, Any]) -> Example:
    """`input` and the targets field (a string or a list of accepted answers)."""
    targets = _field_text(example, args.get("targets_field", "output"))
    return str(_field_text(example, "input")), tuple(map(str, targets if isinstance(targets, list) else [targets]))


@READERS.register("cause_and_effect")
def read_cause_and_effect(example: dict[str, Any], rng: random.Random, args: dict[str, Any]) -> Example:
    """Both sentences in an order chosen at random (seeded here; the original code does not seed
    it); the answer is the cause."""
    cause, effect = str(_field_text(example, "cause")), str(_field_text(example, "effect"))
    first, second = (cause, effect) if rng.random() < 0.5 else (effect, cause)
    return f"Sentence 1: {first} Sentence 2: {second}", (cause,)


@READERS.register("common_concept")
def read_common_concept(example: dict[str, Any], rng: random.Random, args: dict[str, Any]) -> Example:
    """The items but the last, comma-separated (as the APE loader builds the input); every listed
    common concept is accepted."""
    items = _field_text(example, "items")
    return ", ".join(map(str, items[:-1])), tuple(map(str, _field_text(example, "all_common_concepts")))


def _ii_file(path: str, split: str, task: str) -> Path:
    """The task's file of one split. `path` is the data folder (holding induce/ and execute/, or
    raw/ with them); or the task's JSON file, or a folder holding it (execute/): that file gives
    the examples, and the demos come from the same name in the induce/ folder beside it."""
    root = Path(path)
    own = root if root.is_file() else root / f"{task}.json"
    if own.is_file():
        wanted = own if split == "execute" else own.parent.parent / split / own.name
        if wanted.is_file():
            return wanted
        raise UserError(f"no {wanted} for the few-shot demos (the {split} split of the original data, beside {own.parent.name}/)", field="path")
    for candidate in (root / split / f"{task}.json", root / "raw" / split / f"{task}.json"):
        if candidate.is_file():
            return candidate
    raise UserError(f"no {split}/{task}.json under {root} (give the Instruction Induction data folder with induce/ and execute/, or the task's JSON file)", field="path")


@functools.lru_cache(maxsize=64)
def _read_json(path: str, mtime_ns: int) -> Any:
    return load_json(path)


def _ii_examples(spec: TaskSpec) -> tuple[Path, dict[str, Any]]:
    args = spec.source_args
    path = _ii_file(args["path"], args.get("split", "execute"), args.get("task", spec.name))
    data = _read_json(str(path), path.stat().st_mtime_ns)
    examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(examples, dict) or not examples:
        raise UserError("expected an object with a non-empty `examples` mapping", file=str(path), field="examples")
    return path, examples


@SOURCES.register("ii.json")
def ii_json_items(spec: TaskSpec, n: int, seed: int) -> list[TaskItem]:
    """Items of one split of the original data (`path`: see _ii_file), `split` which one;
    examples are drawn in a seeded order of their keys."""
    args = spec.source_args
    split = args.get("split", "execute")
    path, examples = _ii_examples(spec)
    reader = READERS.get(args.get("reader", "field"))
    keys = sorted(examples, key=lambda k: (len(k), k))
    items = []
    for index in seeded_order(keys, spec.id, seed)[:n]:
        key = keys[index]
        rng = random.Random(f"{spec.id}\x1f{split}\x1f{key}\x1f{seed}")
        try:
            text, targets = reader(examples[key], rng, args)
        except (KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"example has no usable field {exc}", file=str(path), field=f"examples.{key}") from None
        items.append(TaskItem(id=f"{split}-{key}", input=text, targets=targets))
    return items


CAPACITY.add("ii.json", lambda spec: len(_ii_examples(spec)[1]))
