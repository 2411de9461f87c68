"""Small data files in the formats the task loaders read, written by the tests themselves (the
examples are the tests' own, not the original datasets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.tasks import TaskSpec

# Instruction Induction raw-format examples for the tasks the workbench cannot generate, with the
# fields the original files use for each.
II_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "sentiment": [{"input": "A warm, funny and moving film.", "output": "positive"}, {"input": "Dull and far too long.", "output": "negative"}],
    "sentence_similarity": [
        {"input": "Sentence 1: A man plays a guitar. Sentence 2: A man is playing a guitar.", "output": "4 - almost perfectly"},
        {"input": "Sentence 1: A cat sleeps. Sentence 2: The stock market fell.", "output": "0 - definitely not"},
    ],
    "word_in_context": [
        {"input": "Sentence 1: He sat on the bank of the river. Sentence 2: She deposited cash at the bank. Word: bank", "output": "not the same"},
        {"input": "Sentence 1: Turn on the light. Sentence 2: The light was too bright. Word: light", "output": "same"},
    ],
    "cause_and_effect": [
        {"cause": "The pipe burst.", "effect": "The kitchen flooded."},
        {"cause": "She forgot her keys.", "effect": "She could not open the door."},
    ],
    "rhymes": [{"input": "cat", "other_rhymes": ["hat", "bat", "mat"]}, {"input": "light", "other_rhymes": ["night", "kite"]}],
    "translation_en-de": [{"input": "house", "possible_translations": ["Haus"]}, {"input": "dog", "possible_translations": ["Hund"]}],
    "translation_en-es": [{"input": "house", "possible_translations": ["casa"]}, {"input": "dog", "possible_translations": ["perro"]}],
    "translation_en-fr": [{"input": "house", "possible_translations": ["maison"]}, {"input": "dog", "possible_translations": ["chien"]}],
    "antonyms": [{"input": "hot", "output": "cold"}, {"input": "early", "output": "late"}],
    "synonyms": [{"input": "big", "output": "large"}, {"input": "quick", "output": "fast"}],
    "common_concept": [
        {"items": ["guitar", "violin", "cello", "harp"], "all_common_concepts": ["have strings", "are string instruments"]},
        {"items": ["apple", "cherry", "tomato", "strawberry"], "all_common_concepts": ["are red"]},
    ],
    "informal_to_formal": [{"input": "gimme a sec", "output": "Please give me a moment."}, {"input": "wanna come?", "output": "Would you like to come?"}],
}


def write_ii_dir(root: Path, tasks: dict[str, TaskSpec]) -> Path:
    """An Instruction Induction raw/ directory (induce/ and execute/) for every ii task: the
    examples above, and for generated tasks their own generated items."""
    for split, seed in (("induce", 1), ("execute", 2)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for spec in tasks.values():
            if spec.suite != "ii":
                continue
            if spec.name in II_EXAMPLES:
                examples = II_EXAMPLES[spec.name]
            else:
                examples = [{"input": item.input, "output": item.targets[0]} for item in spec.items(6, seed)]
            body = {"metadata": {"num_examples": len(examples)}, "examples": {str(i + 1): e for i, e in enumerate(examples)}}
            (root / split / f"{spec.name}.json").write_text(json.dumps(body))
    return root


GSM8K_LINES = [
    {"question": "Tim has 3 boxes of 4 apples. He eats 2. How many are left?", "answer": "3 boxes * 4 = <<3*4=12>>12 apples. 12 - 2 = <<12-2=10>>10.\n#### 10"},
    {"question": "A shop sells 1,000 pens a day for 2 days. How many pens?", "answer": "1,000 * 2 = 2,000\n#### 2,000"},
    {"question": "Ana has 7 dollars and spends 9. What is her balance?", "answer": "7 - 9 = -2\n#### -2"},
]


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


CUSTOM_RECORDS = [
    {"input": "Capital of France?", "target": "Paris"},
    {"id": "q2", "input": "Name a primary colour.", "targets": ["red", "blue", "yellow"]},
    {"input": "Is water wet?", "choices": ["yes", "no"], "answer": "yes"},
    {"input": "Largest planet?", "choices": ["Mars", "Jupiter", "Venus"], "answer": 1},
    {"input": "2 + 2 =", "target": 4, "topic": "arithmetic"},
]
