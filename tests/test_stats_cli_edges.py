"""The edges of the statistics as a user meets them: `compare` and `export` on logs of simulated
runs print undefined figures in words with a footnote, name the scale of the relative gain,
label a partial run, and mark gold-reading conditions with a legend (issue 11, point 1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli, run_json, write_study
from test_export import compile_latex
from workbench.store import connect_reader

EDGES = {
    # control never right: relative gain undefined; EP02 right only where the control is not: OR unbounded
    "sim/zero": {"accuracy": {"control": 0.0, "EP02": 0.4, "NP01": 0.0}},
    # EP02 answers exactly as the control (no discordant pairs); NP01 never right (condition at 0)
    "sim/tie": {"accuracy": {"control": 0.4, "EP02": 0.4, "NP01": 0.0}, "shared_difficulty": 1.0},
}


@pytest.fixture(scope="module")
def edge_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("edges")
    study = {
        "name": "edges",
        "models": [{"id": model, "params": {"temperature": 0.0}, "simulate": simulate} for model, simulate in EDGES.items()],
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}, {"name": "NP01", "stimuli": ["NP01"]}],
        "tasks": [{"task": "ii/sum", "n": 20}],
        "seed": 0,
        "concurrency": 4,
    }
    run_json("run", str(write_study(root / "s.yaml", study)), "--db", str(root / "log.duckdb"))
    return root / "log.duckdb"


def test_undefined_and_adjusted_figures_carry_their_reason_in_json_terminal_markdown_and_latex(edge_log: Path, tmp_path: Path) -> None:
    result = run_json("compare", "--db", str(edge_log))
    rows = {(r["model"], r["condition"]): r for r in result["rows"]}
    zero, unbounded = rows[("sim/zero", "NP01")], rows[("sim/zero", "EP02")]
    assert zero["relative"] is None and zero["relative_note"] == "control_at_0" and zero["odds_ratio_note"] == "no_discordant_pairs"
    assert unbounded["odds_ratio"] is None and unbounded["odds_ratio_note"] == "no_control_only_pairs" and unbounded["odds_ratio_low"] > 0
    tie, never = rows[("sim/tie", "EP02")], rows[("sim/tie", "NP01")]
    assert tie["relative"] == 0.0 and tie["relative_low"] < -0.1 and tie["relative_high"] > 0.1 and tie["relative_note"] == "no_discordant_pairs"
    assert tie["cohens_h_low"] < 0 < tie["cohens_h_high"]
    assert never["relative"] == -1.0 and never["relative_high"] > -1.0 and never["relative_note"] == "condition_at_0"
    assert all(r["relative_scale"] == "raw" for r in result["rows"] if r["condition"] != "control")

    terminal = run_cli("compare", "--db", str(edge_log)).stdout
    assert "undefinedᶜ" in terminal and "-100.0 [-100.0, +" in terminal and "Rel. gain % [CI], raw accuracy" in terminal
    assert "ᶜ undefined: the control's mean score is 0" in terminal and "ᵇ no discordant pairs" in terminal
    assert " inf" not in terminal and "[-100.0, –]" not in terminal

    markdown, latex = tmp_path / "t.md", tmp_path / "t.tex"
    assert run_cli("export", "--db", str(edge_log), "--format", "markdown", "--out", str(markdown)).returncode == 0
    assert run_cli("export", "--db", str(edge_log), "--format", "latex", "--out", str(latex), "--standalone").returncode == 0
    text = markdown.read_text()
    assert "unbounded \\[1." in text and "unbounded\\]ʰ" in text and "ʰ unbounded: no example where only the control was right" in text
    assert "inf" not in text.replace("info", "")
    tex = latex.read_text()
    assert "undefined\\textsuperscript{c}" in tex and "raw accuracy" in tex
    compile_latex(latex)


def test_normalised_relative_gain_is_named_in_the_header_and_rows(tmp_path: Path) -> None:
    study = {
        "name": "normalised",
        "models": [{"id": "sim/planted", "params": {"temperature": 0.0}, "simulate": {"accuracy": {"control": 0.6, "EP02": 0.8}}}],
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
        "tasks": [{"task": "bbh/causal_judgment", "n": 30}, {"task": "ii/sum", "n": 30}],
        "seed": 1,
    }
    db = tmp_path / "log.duckdb"
    run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    result = run_json("compare", "--db", str(db))
    rows = {r["task"]: r for r in result["rows"] if r["condition"] == "EP02"}
    assert rows["bbh/causal_judgment"]["relative_scale"] == "normalized" and rows["ii/sum"]["relative_scale"] == "raw"
    assert result["pooled"][0]["relative_scale"] == "normalized" and result["pooled"][0]["relative_method"] == "ratio_of_task_means"
    terminal = run_cli("compare", "--db", str(db)).stdout
    assert "raw or normalised (notes)" in terminal and "normalised score, (score − chance) / (1 − chance)" in terminal
    assert "bbh/causal_judgment" in terminal.split("Rel. gain: ")[1].split("\n")[0] + terminal.split("Rel. gain: ")[1].split("\n")[1]


def _runs(db: Path) -> list[dict]:
    result = run_cli("runs", "list", "--db", str(db), "--json")
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []


def test_compare_labels_a_partial_run_and_tests_only_complete_examples(tmp_path: Path) -> None:
    """A run stopped part way (SIGTERM, as a user's Ctrl-C): compare warns, labels the tables
    with the progress, and leaves out examples whose repeats are not all logged in both."""
    study = {
        "name": "partial",
        "models": [{"id": "sim/slow", "params": {"temperature": 0.0}, "simulate": {"accuracy": {"control": 0.5, "EP02": 0.7}, "latency_ms": 250}}],  # ~30 s in all: under load the poll below still sees it part way
        "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
        "tasks": [{"task": "ii/sum", "n": 60}],
        "repeats": 2,
        "seed": 3,
        "concurrency": 2,
    }
    db = tmp_path / "log.duckdb"
    runner = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db), "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not any(r["trials_done"] >= 40 for r in _runs(db)):
            time.sleep(0.5)
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=120) in (130, 143, -signal.SIGTERM)
    finally:
        if runner.poll() is None:
            runner.kill()
    result = run_json("compare", "--db", str(db))
    assert result["partial"] is True and 40 <= result["trials_done"] < result["trials_planned"] == 240
    assert result["notes"][0].startswith(f"partial run: {result['trials_done']} of 240 trials logged")
    con = connect_reader(db)
    try:
        counts = con.execute("SELECT item_id, condition, count(*) FROM trials GROUP BY item_id, condition").fetchall()
    finally:
        con.close()
    logged: dict[str, dict[str, int]] = {}
    for item, condition, count in counts:
        logged.setdefault(item, {})[condition] = count
    complete = sum(1 for by in logged.values() if by.get("control") == 2 and by.get("EP02") == 2)
    ep = next(r for r in result["rows"] if r["condition"] == "EP02")
    assert ep["examples"] == complete
    table = run_cli("compare", "--db", str(db))
    assert f"PARTIAL RUN ({result['trials_done']} of 240 trials)" in table.stdout
    assert "warning: run" in table.stderr and "is partial" in table.stderr


def test_gold_reading_conditions_are_flagged_per_task_and_explained_in_the_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.export import figures
    from workbench.stats import compare, load_run

    study = {
        "name": "gold",
        "models": [{"id": "sim/heart", "params": {"temperature": 0.0}, "max_retries": 0, "simulate": {"default_accuracy": 0.3}}],
        "conditions": [{"name": "control"}, {"name": "oracle", "solver": "heart", "solver_params": {"rounds": 2, "mode": "oracle"}}],
        "tasks": [{"task": "math/word_problems", "n": 6}, {"task": "ii/sum", "n": 6}],
        "seed": 7,
    }
    db = tmp_path / "log.duckdb"
    run = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    assert {(t["condition"], t["consumes_gold"]) for t in run["tasks"]} == {("control", False), ("oracle", True)}
    terminal = run_cli("run", str(tmp_path / "s.yaml"), "--db", str(db), env={"COLUMNS": "250"}).stdout
    per_task = " ".join(terminal.split("per task")[1].split("per round")[0].split())
    assert per_task.count("oracle GOLD") == 2 and "GOLD: read gold labels" in per_task
    data = load_run(db)
    captured: list = []
    monkeypatch.setattr(figures, "_rendered", lambda figure, name, provenance="", created=None: captured.append(figure) or {})
    figures.write_figures(compare(data.frame, data.control), tmp_path / "figs")
    assert len(captured) == 2
    for figure in captured:
        texts = [t.get_text() for t in figure.findobj(lambda artist: hasattr(artist, "get_text"))]
        assert any("read gold labels" in text for text in texts), "the † is explained in the figure"
        labels = [t.get_text() for ax in figure.axes for t in [*ax.get_yticklabels(), *ax.get_xticklabels()]]
        assert any("†" in label for label in labels)
    forest_labels = [t.get_text() for t in captured[0].axes[0].get_yticklabels()]
    assert any("pooled over 2 tasks" in label for label in forest_labels), "a pooled figure says how many tasks it used"
