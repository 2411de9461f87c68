"""BIG-Bench tasks from the `bigbench` 1.0.0 sdist on PyPI.

The sdist (358 MB) carries every task's task.json. On first use it is downloaded once with pip
(no install), only the task files the `bbh` suite names are kept in the workbench cache
(`<cache>/bigbench-1.0.0/<task>/task.json`, with a manifest of hashes), and the download is
deleted. A machine without PyPI access can point WORKBENCH_BIGBENCH_SDIST at a copy of the sdist.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.paths import cache_dir, cache_lock
from . import DEFAULT_CHOICE_PREFIX, SOURCES, TaskItem, TaskSpec, builtin_suites, seeded_order, with_choices
from ..core.seeds import stable_seed

SOURCE = "bbh.task_json"
REQUIREMENT = "bigbench==1.0.0"
SDIST = "bigbench-1.0.0.tar.gz"
SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
SDIST_ENV = "WORKBENCH_BIGBENCH_SDIST"
# pip 26.3 refuses to prepare a PyPI sdist that declares a direct-URL dependency, and bigbench
# declares `bleurt @ file://...`; the last pip before that check downloads it (run from its wheel).
HELPER_PIP = "pip==26.2.1"
FIRST_STRICT_PIP = (26, 3)


def bigbench_dir() -> Path:
    return cache_dir() / "bigbench-1.0.0"


def suite_task_names() -> list[str]:
    """The task files the `bbh` suite uses (its tasks' task files)."""
    return sorted({task_file(spec) for _, specs in builtin_suites().values() for spec in specs.values() if spec.source == SOURCE})


def task_file(spec: TaskSpec) -> str:
    """The BIG-bench task a spec reads: `source_args.task`, by default the spec's own name."""
    return spec.source_args.get("task", spec.name)


def _complete(root: Path, names: list[str]) -> bool:
    return (root / "manifest.json").is_file() and all((root / name / "task.json").is_file() for name in names)


def ensure_bigbench(log=None) -> Path:
    """The cache directory with the suite's task files, fetched now if they are not there yet."""
    say = log or (lambda message: print(message, file=sys.stderr, flush=True))
    root, names = bigbench_dir(), suite_task_names()
    if _complete(root, names):
        return root
    with cache_lock("bigbench"):  # the cache's lock files, shared with the model preparation
        if not _complete(root, names):  # another process may have fetched it meanwhile
            _fetch(root, names, say)
    return root


def _fetch(root: Path, names: list[str], say) -> None:
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="bigbench-fetch-") as tmp:
        work = Path(tmp)
        local = os.environ.get(SDIST_ENV)
        sdist = Path(local) if local else _download(work, say)
        digest = _sha256(sdist)
        if digest != SDIST_SHA256:
            raise UserError(f"sha256 {digest} is not the bigbench 1.0.0 sdist's ({SDIST_SHA256})", file=str(sdist))
        staging = work / "tasks"
        hashes = _extract_task_files(sdist, set(names), staging)
        missing = sorted(set(names) - set(hashes))
        if missing:
            raise UserError(f"the sdist has no task.json for {', '.join(missing)}", file=str(sdist))
        manifest = {"requirement": REQUIREMENT, "sdist": SDIST, "sdist_sha256": digest, "task_json_sha256": hashes}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        if root.exists():
            shutil.rmtree(root)
        os.replace(staging, root)  # same file system: the cache directory holds both
        say(f"BIG-bench: kept {len(hashes)} task files in {root}")


def _download(work: Path, say) -> Path:
    say(f"BIG-bench: downloading the {REQUIREMENT} sdist from PyPI once (about 360 MB; only {SDIST_ENV} avoids this)")
    pip = [sys.executable, "-m", "pip"]
    if _pip_version() >= FIRST_STRICT_PIP:
        helper = work / "helper"
        _run([*pip, "download", HELPER_PIP, "--no-deps", "--only-binary", ":all:", "--no-cache-dir", "-d", str(helper)])
        wheel = next(helper.glob("pip-*.whl"))
        pip = [sys.executable, str(wheel / "pip")]
    dest = work / "sdist"
    _run([*pip, "download", REQUIREMENT, "--no-deps", "--no-binary", ":all:", "--no-cache-dir", "--disable-pip-version-check", "-d", str(dest)])
    return dest / SDIST


def _pip_version() -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in metadata.version("pip").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return (0,)


def _run(command: list[str]) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"fetching BIG-bench failed: {exc} (or set {SDIST_ENV} to a local {SDIST})") from None
    if result.returncode != 0:
        tail = " | ".join(line for line in result.stderr.strip().splitlines()[-3:] if line.strip())
        raise UserError(f"fetching BIG-bench failed ({' '.join(command[1:4])}): {tail} (or set {SDIST_ENV} to a local {SDIST})")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _extract_task_files(sdist: Path, names: set[str], staging: Path) -> dict[str, str]:
    """Stream the archive and write only <task>/task.json of the wanted tasks."""
    hashes: dict[str, str] = {}
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if len(parts) == 5 and parts[1:3] == ["bigbench", "benchmark_tasks"] and parts[4] == "task.json" and parts[3] in names and member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                data = handle.read()
                (staging / parts[3]).mkdir(parents=True, exist_ok=True)
                (staging / parts[3] / "task.json").write_bytes(data)
                hashes[parts[3]] = hashlib.sha256(data).hexdigest()
    return hashes


@functools.lru_cache(maxsize=32)
def load_task_json(name: str) -> dict[str, Any]:
    return json.loads((ensure_bigbench() / name / "task.json").read_text(encoding="utf-8"))


def chance_score(task: dict[str, Any]) -> float:
    """BIG-bench's low_score (json_task.py): for multiple_choice_grade the mean over examples of
    the mean target score, i.e. the expected grade of a uniform random choice; else the metric's
    minimum, 0 for exact_str_match."""
    if task["preferred_score"] != "multiple_choice_grade":
        return 0.0
    examples = task["examples"]
    return sum(sum(e["target_scores"].values()) / len(e["target_scores"]) for e in examples) / len(examples)


def _item(spec: TaskSpec, task: dict[str, Any], index: int, example: dict[str, Any]) -> TaskItem:
    item_id = f"{index:05d}"
    if "target_scores" not in example:
        # Surrounding whitespace is dropped: answers are stripped too (some tense targets end in a space).
        targets = example["target"] if isinstance(example["target"], list) else [example["target"]]
        return TaskItem(id=item_id, input=example["input"], targets=tuple(dict.fromkeys(t.strip() for t in targets)))
    scores: dict[str, float] = example["target_scores"]
    best = max(scores.values())
    choices = list(scores)
    # A fixed order per example (not per study seed), so an item's text is the same in every study.
    random.Random(stable_seed(spec.id, "choices", index)).shuffle(choices)
    text = example["input"]
    if spec.source_args.get("show_choices", True):
        text = with_choices(text, choices, task.get("choice_prefix", DEFAULT_CHOICE_PREFIX))
    return TaskItem(id=item_id, input=text, targets=tuple(c for c in choices if scores[c] == best), choices=tuple(choices))


@SOURCES.register(SOURCE)
def bbh_items(spec: TaskSpec, n: int, seed: int) -> list[TaskItem]:
    """Examples of one task file in a seeded order of their indices."""
    task = load_task_json(task_file(spec))
    examples = task["examples"]
    order = seeded_order([f"{i:05d}" for i in range(len(examples))], spec.id, seed)
    return [_item(spec, task, i, examples[i]) for i in order[:n]]
