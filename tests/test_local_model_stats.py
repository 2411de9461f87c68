"""compare and export on a log written by the real embedded model (tiny: 3 conditions x 4 examples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli, run_json, write_study
from test_export import compile_latex
from test_local_model import _study
from workbench.store import connect_reader

pytestmark = pytest.mark.local_model


def test_compare_and_export_a_run_of_the_embedded_model(tmp_path: Path, local_server) -> None:
    study = _study(name="local_stats & export", seed=11)  # the end-to-end test's 3 conditions x 4 examples
    db = tmp_path / "log.duckdb"
    run = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    assert run["trials_done"] == 12 and run["model_calls"] + run["cache_hits"] == 12

    assert {(t["condition"], t["consumes_gold"]) for t in run["tasks"]} == {(c, False) for c in ("control", "EP02", "NP01")}

    result = run_json("compare", "--db", str(db))
    assert result["run_id"] == run["run_id"]
    assert result["partial"] is False and result["trials_done"] == result["trials_planned"] == 12
    rows = {r["condition"]: r for r in result["rows"]}
    assert set(rows) == {"control", "EP02", "NP01"}
    con = connect_reader(db)
    scores = {}
    for condition, item, score in con.execute("SELECT condition, item_id, coalesce(score, 0) FROM trials WHERE run_id = ?", [run["run_id"]]).fetchall():
        scores.setdefault(condition, {})[item] = score
    for name, row in rows.items():
        assert row["model"] == "local/default" and row["task"] == "ii/sum" and row["n"] == 4
        assert row["accuracy"] == pytest.approx(sum(scores[name].values()) / 4)
        if name != "control":
            assert row["delta"] == pytest.approx(sum(scores[name][i] - scores["control"][i] for i in scores[name]) / 4)
            assert 0.0 <= row["p_value"] <= row["p_adjusted"] <= 1.0 and row["test"] == "mcnemar_exact"
            assert -1.0 <= row["ci_low"] <= row["delta"] <= row["ci_high"] <= 1.0
            # ii/sum has no chance level: the relative gain is on raw accuracy, and an undefined one says why
            assert row["relative_scale"] == "raw"
            assert (row["relative"] is None) == (row["relative_note"] in ("control_at_0",))
            assert row["ci_high"] - row["ci_low"] > 0.2, "4 examples cannot give a narrow interval"

    tex, figures = tmp_path / "table.tex", tmp_path / "figures"
    exported = run_cli("export", "--db", str(db), "--format", "latex", "--out", str(tex), "--standalone", "--figures", str(figures))
    assert exported.returncode == 0, exported.stderr
    assert "local\\_stats \\& export" in tex.read_text()
    assert compile_latex(tex) >= 1
    assert sorted(p.name for p in figures.iterdir()) == ["forest.pdf", "forest.png", "heatmap.pdf", "heatmap.png", "references.bib"]  # the bib goes beside every export
    markdown = tmp_path / "table.md"
    assert run_cli("export", "--db", str(db), "--format", "markdown", "--out", str(markdown)).returncode == 0
    assert "| local/default | ii/sum | EP02 |" in markdown.read_text()
