"""Reasoning with an exact verifier: generated multi-step arithmetic word problems, and a loader
for GSM8K-format JSONL (`question`, `answer` ending in `#### <number>`).

The problem templates, names and objects are the workbench's own. Every template's parameters
are drawn independently and all appear in the question, so distinct draws are distinct problems
and the number of possible problems is the product of the parameter ranges.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.registry import Registry
from ..scoring.metrics import canonical_number
from . import CAPACITY, SOURCES, TaskItem, TaskSpec
from .files import records, register_file_source
from .generators import check_capacity, distinct_items

PEOPLE = (("Maya", "she"), ("Liam", "he"), ("Aisha", "she"), ("Tomas", "he"), ("Mei", "she"), ("Kofi", "he"), ("Sara", "she"), ("Ivan", "he"))
OBJECTS = ("stickers", "pencils", "marbles", "cards", "balloons", "stamps")


@dataclass(frozen=True)
class Problem:
    question: str
    answer: int
    solution: str  # worked steps ending in "#### answer", shown when the problem is a demo


@dataclass(frozen=True)
class Template:
    params: dict[str, Sequence[Any]]
    build: Callable[[dict[str, Any]], Problem]

    def size(self) -> int:
        return math.prod(len(values) for values in self.params.values())


TEMPLATES: Registry[Template] = Registry("word problem template")


def _steps(*lines: str, answer: int) -> str:
    return " ".join(lines) + f"\n#### {answer}"


def _shopping(p: dict[str, Any]) -> Problem:
    (name, pronoun), item = p["person"], p["object"]
    total = p["packs"] * p["per_pack"]
    answer = total - p["given"] + p["bought"]
    return Problem(
        f"{name} buys {p['packs']} packs of {item} with {p['per_pack']} {item} in each pack. {pronoun.capitalize()} gives "
        f"{p['given']} {item} to a friend and then buys {p['bought']} more. How many {item} does {name} have now?",
        answer,
        _steps(f"{p['packs']} * {p['per_pack']} = {total}.", f"{total} - {p['given']} = {total - p['given']}.",
               f"{total - p['given']} + {p['bought']} = {answer}.", answer=answer),
    )


def _savings(p: dict[str, Any]) -> Problem:
    name, _ = p["person"]
    saved = p["weekly"] * p["weeks"]
    answer = saved - p["spent"]
    return Problem(
        f"{name} saves ${p['weekly']} every week for {p['weeks']} weeks and then spends ${p['spent']} on a present. "
        f"How many dollars does {name} have left?",
        answer,
        _steps(f"{p['weekly']} * {p['weeks']} = {saved}.", f"{saved} - {p['spent']} = {answer}.", answer=answer),
    )


def _sharing(p: dict[str, Any]) -> Problem:
    name, _ = p["person"]
    baked = p["friends"] * p["each"] + p["eaten"]
    return Problem(
        f"{name} baked {baked} cookies, ate {p['eaten']} of them and shared the rest equally among {p['friends']} friends. "
        f"How many cookies did each friend get?",
        p["each"],
        _steps(f"{baked} - {p['eaten']} = {baked - p['eaten']}.", f"{baked - p['eaten']} / {p['friends']} = {p['each']}.", answer=p["each"]),
    )


def _travel(p: dict[str, Any]) -> Problem:
    first, second = p["speed1"] * p["hours1"], p["speed2"] * p["hours2"]
    answer = first + second
    return Problem(
        f"A train travels at {p['speed1']} km per hour for {p['hours1']} hours and then at {p['speed2']} km per hour for "
        f"{p['hours2']} hours. How many kilometres does it travel in total?",
        answer,
        _steps(f"{p['speed1']} * {p['hours1']} = {first}.", f"{p['speed2']} * {p['hours2']} = {second}.", f"{first} + {second} = {answer}.", answer=answer),
    )


def _garden(p: dict[str, Any]) -> Problem:
    name, _ = p["person"]
    planted = (p["rows1"] + p["rows2"]) * p["per_row"]
    answer = planted - p["lost"]
    return Problem(
        f"{name} plants {p['rows1']} rows of tulips with {p['per_row']} tulips in each row, and later {p['rows2']} more rows "
        f"of the same size. {p['lost']} tulips do not grow. How many tulips grow?",
        answer,
        _steps(f"{p['rows1']} + {p['rows2']} = {p['rows1'] + p['rows2']} rows.", f"{p['rows1'] + p['rows2']} * {p['per_row']} = {planted}.",
               f"{planted} - {p['lost']} = {answer}.", answer=answer),
    )


def _reading(p: dict[str, Any]) -> Problem:
    name, _ = p["person"]
    read = p["per_day"] * p["days"]
    pages = read + p["left"]
    return Problem(
        f"A book has {pages} pages. {name} reads {p['per_day']} pages a day for {p['days']} days. How many pages are left to read?",
        p["left"],
        _steps(f"{p['per_day']} * {p['days']} = {read}.", f"{pages} - {read} = {p['left']}.", answer=p["left"]),
    )


def _change(p: dict[str, Any]) -> Problem:
    name, pronoun = p["person"]
    cost = p["apple"] * p["apples"] + p["pear"] * p["pears"]
    bill = next(b for b in (20, 50, 100) if b >= cost)
    answer = bill - cost
    return Problem(
        f"Apples cost ${p['apple']} each and pears cost ${p['pear']} each. {name} buys {p['apples']} apples and {p['pears']} pears "
        f"and pays with a ${bill} bill. How many dollars of change does {pronoun} get?",
        answer,
        _steps(f"{p['apple']} * {p['apples']} = {p['apple'] * p['apples']}.", f"{p['pear']} * {p['pears']} = {p['pear'] * p['pears']}.",
               f"{p['apple'] * p['apples']} + {p['pear'] * p['pears']} = {cost}.", f"{bill} - {cost} = {answer}.", answer=answer),
    )


TEMPLATES.add("shopping", Template({"person": PEOPLE, "object": OBJECTS, "packs": range(2, 10), "per_pack": range(3, 13), "given": range(2, 7), "bought": range(1, 21)}, _shopping))
TEMPLATES.add("savings", Template({"person": PEOPLE, "weekly": range(5, 41), "weeks": range(2, 13), "spent": range(1, 10)}, _savings))
TEMPLATES.add("sharing", Template({"person": PEOPLE, "friends": range(2, 9), "each": range(2, 13), "eaten": range(1, 10)}, _sharing))
TEMPLATES.add("travel", Template({"speed1": range(40, 121, 5), "hours1": range(1, 6), "speed2": range(40, 121, 5), "hours2": range(1, 6)}, _travel))
TEMPLATES.add("garden", Template({"person": PEOPLE, "rows1": range(2, 9), "rows2": range(1, 6), "per_row": range(4, 13), "lost": range(1, 8)}, _garden))
TEMPLATES.add("reading", Template({"person": PEOPLE, "per_day": range(5, 31), "days": range(2, 10), "left": range(5, 121)}, _reading))
TEMPLATES.add("change", Template({"person": PEOPLE, "apple": range(1, 6), "pear": range(1, 6), "apples": range(1, 7), "pears": range(1, 7)}, _change))


def _templates(spec: TaskSpec) -> list[str]:
    names = spec.source_args.get("templates") or TEMPLATES.names()
    for name in names:
        TEMPLATES.get(name)  # unknown names fail with the known ones listed
    return list(names)


@SOURCES.register("math.word_problems")
def word_problem_items(spec: TaskSpec, n: int, seed: int) -> list[TaskItem]:
    """Problems drawn from the task's templates (all by default), each with its worked solution."""
    names = _templates(spec)
    check_capacity(spec, n, word_problem_capacity(spec))
    solutions: dict[str, str] = {}

    def draw(rng: random.Random, args: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        template = TEMPLATES.get(rng.choice(names))
        problem = template.build({key: rng.choice(list(values)) for key, values in template.params.items()})
        solutions[problem.question] = problem.solution
        return problem.question, (str(problem.answer),)

    items = distinct_items(spec, n, seed, draw)
    return [TaskItem(id=i.id, input=i.input, targets=i.targets, demo_output=solutions[i.input]) for i in items]


def word_problem_capacity(spec: TaskSpec) -> int:
    return sum(TEMPLATES.get(name).size() for name in _templates(spec))


CAPACITY.add("math.word_problems", word_problem_capacity)


# -- GSM8K-format files ---------------------------------------------------------------------------
_FINAL = re.compile(r"####\s*(-?[\d,]*\.?\d+)\s*$")
_CALCULATOR = re.compile(r"<<[^>]*>>")


def gsm8k_items(path: str) -> list[TaskItem]:
    items = []
    for number, record in records(Path(path)):
        for name in ("question", "answer"):
            if not isinstance(record.get(name), str) or not record[name].strip():
                raise UserError("is required: a non-empty string", file=path, field=f"line {number}, field {name!r}")
        final = _FINAL.search(record["answer"].strip())
        if not final:
            raise UserError("must end with '#### <number>'", file=path, field=f"line {number}, field 'answer'")
        solution = _CALCULATOR.sub("", record["answer"].strip())  # drop GSM8K's calculator annotations in demos
        items.append(TaskItem(id=f"line-{number}", input=record["question"].strip(), targets=(canonical_number(final.group(1)),), demo_output=solution))
    return items


register_file_source("math.gsm8k_jsonl", gsm8k_items)
