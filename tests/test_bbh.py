"""The 21 BIG-Bench tasks load from the cached bigbench 1.0.0 sdist (fetched on first use, in CI
too) with the counts, metrics and chance scores BIG-bench itself derives from the files."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from workbench.core.errors import UserError
from workbench.tasks import builtin_tasks, get_task
from workbench.tasks import bbh

# Example counts of the 21 tasks (the reference list of the source papers, tasks.yaml n_examples).
EXPECTED_COUNTS = {
    "causal_judgment": 190, "disambiguation_qa": 258, "dyck_languages": 1000, "epistemic_reasoning": 2000,
    "gender_inclusive_sentences_german": 200, "implicatures": 492, "linguistics_puzzles": 2000,
    "logical_fallacy_detection": 2800, "movie_recommendation": 500, "navigate": 1000, "object_counting": 1000,
    "operators": 211, "presuppositions_as_nli": 735, "question_selection": 1590, "ruin_names": 448, "snarks": 181,
    "sports_understanding": 1000, "tense": 286, "winowhy": 2865, "word_sorting": 1900, "word_unscrambling": 8917,
}


@pytest.fixture(scope="module")
def bigbench_root() -> Path:
    return bbh.ensure_bigbench()  # downloads the sdist once per machine (CI: on first use)


def test_the_cache_holds_exactly_the_suites_task_files(bigbench_root: Path) -> None:
    manifest = json.loads((bigbench_root / "manifest.json").read_text())
    assert manifest["sdist_sha256"] == bbh.SDIST_SHA256
    assert sorted(manifest["task_json_sha256"]) == sorted(EXPECTED_COUNTS)
    kept = sorted(p.relative_to(bigbench_root).as_posix() for p in bigbench_root.rglob("*") if p.is_file())
    assert kept == sorted([f"{name}/task.json" for name in EXPECTED_COUNTS] + ["manifest.json"])


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_task_counts_metric_and_chance_match_bigbench(bigbench_root: Path, name: str) -> None:
    spec = get_task(f"bbh/{name}")
    data = bbh.load_task_json(name)
    assert len(data["examples"]) == EXPECTED_COUNTS[name] == spec.n_available == spec.available()
    assert spec.metric == data["preferred_score"]
    assert spec.chance == pytest.approx(bbh.chance_score(data), abs=1e-6)
    assert spec.parser_args == {k: data[k] for k in ("stop_string", "output_regex") if k in data}
    items = spec.items(EXPECTED_COUNTS[name], seed=0)
    assert len(items) == EXPECTED_COUNTS[name] and len({i.id for i in items}) == EXPECTED_COUNTS[name]
    assert all(i.targets for i in items)
    if spec.metric == "multiple_choice_grade":
        assert all(set(i.targets) <= set(i.choices) for i in items)


def test_the_suite_has_the_21_tasks() -> None:
    assert sorted(t.removeprefix("bbh/") for t in builtin_tasks() if t.startswith("bbh/")) == sorted(EXPECTED_COUNTS)


def test_fetch_keeps_only_the_named_files_from_a_local_sdist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The extraction path, offline: a stand-in sdist through WORKBENCH_BIGBENCH_SDIST."""
    sdist = tmp_path / "bigbench-1.0.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name, body in {
            "bigbench-1.0.0/bigbench/benchmark_tasks/snarks/task.json": b'{"examples": []}',
            "bigbench-1.0.0/bigbench/benchmark_tasks/snarks/README.md": b"readme",
            "bigbench-1.0.0/bigbench/benchmark_tasks/other/task.json": b"{}",
            "bigbench-1.0.0/setup.py": b"",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    cache = tmp_path / "cache"
    monkeypatch.setenv("WORKBENCH_CACHE", str(cache))
    monkeypatch.setenv(bbh.SDIST_ENV, str(sdist))
    monkeypatch.setattr(bbh, "suite_task_names", lambda: ["snarks"])
    with pytest.raises(UserError, match="sha256"):
        bbh.ensure_bigbench(log=lambda m: None)
    monkeypatch.setattr(bbh, "SDIST_SHA256", bbh._sha256(sdist))
    root = bbh.ensure_bigbench(log=lambda m: None)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == ["manifest.json", "snarks/task.json"]
    assert not [p for p in cache.iterdir() if p.name.startswith("bigbench-fetch-")], "the download directory is removed"
    monkeypatch.setattr(bbh, "suite_task_names", lambda: ["snarks", "missing_task"])
    with pytest.raises(UserError, match="missing_task"):
        bbh.ensure_bigbench(log=lambda m: None)
