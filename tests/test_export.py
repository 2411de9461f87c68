"""`workbench compare` and `workbench export` on logs of simulated studies: JSON rows, booktabs
LaTeX compiled by pdflatex, Markdown, CSV, figures that open, escaping, bad input."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, run_json, sim_study, write_study
from workbench.export import latex_escape, markdown_escape, to_latex, to_markdown
from workbench.export.figures import write_figures
from workbench.run.simulate import sim_study as planted_study
from workbench.run.simulate import simulated_frames
from workbench.stats import compare
from workbench.store import connect_reader

ROW_FIELDS = {"model", "condition", "task", "n", "accuracy", "delta", "ci_low", "ci_high", "p_value", "p_adjusted"}
NASTY_MODEL = "sim/we|rd&_%$#{}~^\\na[/]me"


def compile_latex(tex: Path) -> int:
    """Run Debian's pdflatex on `tex` and return the page count; the test fails (not skips)
    without it: .ci/run installs it."""
    engine = shutil.which("pdflatex")
    if engine is None:
        pytest.fail("pdflatex is missing: apt-get install --no-install-recommends texlive-latex-base texlive-latex-recommended (see .ci/run)")
    result = subprocess.run(
        [engine, "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tex.parent, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert tex.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    pages = re.search(r"Output written on .*\((\d+) pages?", result.stdout.replace("\n", ""))
    assert pages, result.stdout[-2000:]
    return int(pages.group(1))


def pdf_pages(path: Path) -> int:
    """Pages of a PDF whose page objects are not compressed (matplotlib's)."""
    return len(re.findall(rb"/Type\s*/Page[^s]", path.read_bytes()))


@pytest.fixture(scope="module")
def sim_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A logged run with special characters in the study and model names and errored trials."""
    root = tmp_path_factory.mktemp("log")
    tasks = [{"task": "ii/sum", "n": 80}, {"task": "ii/diff", "n": 60}, {"task": "ii/first_word_letter", "n": 60}]
    study = sim_study(name="effects & costs_50% #1", tasks=tasks)
    study["models"][0]["id"] = NASTY_MODEL
    study["models"][0]["simulate"] = {"accuracy": {"control": 0.5, "EP02": 0.8}, "error_rate": 0.05}
    study["models"][0]["max_retries"] = 0
    study["conditions"].append({"name": "+EP_01", "stimuli": ["EP01"]})
    result = run_json("run", str(write_study(root / "s.yaml", study)), "--db", str(root / "log.duckdb"))
    return root / "log.duckdb", result


def test_compare_json_has_the_rows_and_agrees_with_the_run_and_the_log(sim_log) -> None:
    db, run = sim_log
    result = run_json("compare", "--db", str(db))
    assert result["run_id"] == run["run_id"] and result["errors"] == "wrong" and result["adjust"] == "holm"
    assert {(r["task"], r["condition"]) for r in result["rows"]} == {
        (t, c) for t in ("ii/sum", "ii/diff", "ii/first_word_letter", "all") for c in ("control", "EP02", "NP01", "+EP_01")
    }
    for row in result["rows"]:
        assert ROW_FIELDS <= set(row) and row["model"] == NASTY_MODEL
        assert row["n"] == {"ii/sum": 80, "ii/diff": 60, "ii/first_word_letter": 60, "all": 200}[row["task"]]
    con = connect_reader(db)
    for row in result["rows"]:
        where = "" if row["task"] == "all" else f" AND task = '{row['task']}'"
        accuracy, errors = con.execute(
            f"SELECT avg(coalesce(score, 0)), count(*) FILTER (WHERE status = 'error') FROM trials WHERE condition = ?{where}", [row["condition"]]
        ).fetchone()
        assert row["accuracy"] == pytest.approx(accuracy) and row["errors"] == errors
    rows = {r["condition"]: r for r in result["rows"] if r["task"] == "all"}
    for name, row in rows.items():  # `run` reports the across-task rows
        by_run = next(c for c in run["conditions"] if c["name"] == name)
        assert (row["delta"], row["p_value"], row["ci_low"]) == (by_run["delta"], by_run["p_value"], by_run["ci_low"])
    assert sum(r["errors"] for r in rows.values()) > 0
    pooled = {p["condition"]: p for p in result["pooled"]}
    assert set(pooled) == {"EP02", "NP01", "+EP_01"} and pooled["EP02"]["tasks"] == 3
    assert pooled["EP02"]["pooled_ci_low"] > 0 and pooled["EP02"]["gee_estimate"] > 1 and pooled["EP02"]["p_adjusted"] >= pooled["EP02"]["pooled_p_value"]
    # three tasks: the Hartung-Knapp-Sidik-Jonkman t interval with 2 df, not a z interval
    assert pooled["EP02"]["pooled_method"] == "random_effects_pm_hksj" and pooled["EP02"]["pooled_df"] == 2
    ep = rows["EP02"]
    assert ep["ci_low"] < ep["delta"] < ep["ci_high"] and ep["p_adjusted"] < 0.05 and ep["test"] == "mcnemar_exact"
    assert ep["p_adjusted"] >= ep["p_value"] and ep["family_size"] == 3
    assert rows["control"]["delta"] is None and rows["control"]["p_value"] is None
    raw = run_cli("compare", "--db", str(db), "--json").stdout
    assert "NaN" not in raw and "Infinity" not in raw, "strict JSON: non-finite numbers become null"
    # BH on request, over a named family, with errors excluded
    other = run_json("compare", "--db", str(db), "--adjust", "bh", "--conditions", "EP02,NP01", "--errors", "exclude", "--run", run["run_id"])
    assert other["adjust"] == "bh" and other["errors"] == "exclude"
    assert {r["condition"] for r in other["rows"]} == {"control", "EP02", "NP01"} and len(other["pooled"]) == 2
    assert all(r["errors_policy"] == "exclude" and r["family_size"] in (0, 2) for r in other["rows"])


def test_errors_policy_comes_from_the_study(tmp_path: Path) -> None:
    study = sim_study(errors="exclude")
    study["models"][0]["simulate"] = {"default_accuracy": 1.0, "error_rate": 0.3}
    study["models"][0]["max_retries"] = 0
    db = tmp_path / "log.duckdb"
    run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    result = run_json("compare", "--db", str(db))
    assert result["errors"] == "exclude"
    for row in result["rows"]:
        assert row["errors_policy"] == "exclude" and row["errors"] > 0 and row["accuracy"] == 1.0 and row["n"] == 20
    table = run_cli("compare", "--db", str(db))
    assert table.returncode == 0 and "Errored trials are excluded" in table.stdout


def test_latex_export_compiles_with_booktabs_intervals_marks_and_escaped_names(sim_log, tmp_path: Path) -> None:
    db, _ = sim_log
    fragment, standalone = tmp_path / "table.tex", tmp_path / "doc.tex"
    assert run_cli("export", "--db", str(db), "--format", "latex", "--out", str(fragment)).returncode == 0
    assert run_cli("export", "--db", str(db), "--format", "latex", "--out", str(standalone), "--standalone").returncode == 0
    text = fragment.read_text()
    for command in ("\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}"):
        assert command in text
    assert latex_escape(NASTY_MODEL) in text and NASTY_MODEL not in text
    assert "effects \\& costs\\_50\\% \\#1" in text and "\\+EP" not in text and "+EP\\_01" in text
    assert re.search(r"\$\+\$0\.\d{3} \[\$\+\$0\.\d{3}, \$\+\$0\.\d{3}\]", text), "differences with their intervals, signs in math mode"
    assert re.search(r"\$\^\{\*+\}\$", text), "significance marks"
    assert "Holm-adjusted" in text and "count as wrong" in text and "Effects across tasks" in text and "Cochran's Q" in text
    assert compile_latex(standalone) >= 1
    wrapper = tmp_path / "wrapper.tex"
    wrapper.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\\input{table.tex}\\end{document}\n")
    compile_latex(wrapper)


def test_markdown_and_csv_exports_escape_what_they_print(sim_log, tmp_path: Path) -> None:
    db, _ = sim_log
    md, table_csv = tmp_path / "t.md", tmp_path / "t.csv"
    assert run_cli("export", "--db", str(db), "--format", "markdown", "--out", str(md)).returncode == 0
    assert run_cli("export", "--db", str(db), "--format", "csv", "--out", str(table_csv)).returncode == 0
    tables = [block for block in md.read_text().split("\n\n") if block.startswith("|")]
    assert len(tables) == 4  # per task, across tasks, all conditions at once, format diagnostic
    for table in tables:
        cells_per_line = {len(re.split(r"(?<!\\)\|", line)) for line in table.splitlines()}
        assert len(cells_per_line) == 1, "a pipe in a name must not add a column"
    assert markdown_escape(NASTY_MODEL) in md.read_text()
    rows = [r for r in csv.DictReader(io.StringIO(table_csv.read_text())) if r["table"] in ("per_task", "across_tasks")]
    assert len(rows) == 16 and ROW_FIELDS <= set(rows[0])
    assert {r["model"] for r in rows} == {NASTY_MODEL}
    assert "'+EP_01" in {r["condition"] for r in rows}, "a cell a spreadsheet would run as a formula is defused"


def test_figures_are_written_as_pdf_and_png_and_open(sim_log, tmp_path: Path) -> None:
    from matplotlib.image import imread

    db, _ = sim_log
    figures = tmp_path / "figures"
    result = run_cli("export", "--db", str(db), "--figures", str(figures))
    assert result.returncode == 0, result.stderr
    for name in ("forest", "heatmap"):
        image = imread(figures / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400 and float(np.std(image)) > 0.05
        pdf = (figures / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF") and pdf_pages(figures / f"{name}.pdf") == 1


def test_several_tasks_export_pooled_effects_and_a_task_by_stimulus_heatmap(tmp_path: Path) -> None:
    from matplotlib.image import imread

    frames = simulated_frames(planted_study({"control": 0.5, "EP02": 0.65, "NP_01": 0.45}, 100), 3, seed=2)
    frame = pd.concat([f.assign(task=t) for f, t in zip(frames, ("bbh/causal_judgement", "ii/sum", "ii/word_sorting"))])
    result = compare(frame, "control")
    assert result.pooled and all(p.pooled is not None and p.gee is not None for p in result.pooled)
    doc = tmp_path / "pooled.tex"
    doc.write_text(to_latex(result, "three tasks", standalone=True))
    assert "Effects across tasks" in doc.read_text() and "NP\\_01" in doc.read_text()
    compile_latex(doc)
    assert "Pooled Δ" in to_markdown(result)
    paths = write_figures(result, tmp_path / "figs")
    assert sorted(p.name for p in paths) == ["forest.pdf", "forest.png", "heatmap.pdf", "heatmap.png"]
    assert imread(tmp_path / "figs" / "heatmap.png").shape[0] > 300


def test_terminal_tables_print_names_as_written(sim_log, tmp_path: Path) -> None:
    """A `[` in a user's name is text, not rich markup: the tables print it and errors quote it."""
    db, _ = sim_log
    result = run_cli("compare", "--db", str(db), "--conditions", "EP02")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "na[/]me" in result.stdout
    missing = run_cli("compare", "--db", str(tmp_path / "[bold]missing.duckdb"))
    assert missing.returncode == 2 and "[bold]missing.duckdb: no log here" in missing.stderr, missing.stderr


def test_bad_input_exits_2_with_a_clear_message_and_writes_nothing(sim_log, tmp_path: Path) -> None:
    db, _ = sim_log
    out = tmp_path / "never.tex"
    cases = [
        (("compare", "--db", str(tmp_path / "missing.duckdb")), "no log here"),
        (("compare", "--db", str(db), "--run", "nope"), "--run"),
        (("compare", "--db", str(db), "--adjust", "sidak"), "allowed: holm, bh, bonferroni, none"),
        (("compare", "--db", str(db), "--conditions", "EP99"), "unknown condition"),
        (("compare", "--db", str(db), "--control", "EP99"), "--control"),
        (("compare", "--db", str(db), "--test", "wilcoxon", "--errors", "sometimes"), "--errors"),
        (("export", "--db", str(db), "--format", "docx", "--out", str(out)), "allowed: csv, latex, markdown, parquet, trials.csv, trials.parquet"),
        (("export", "--db", str(db), "--format", "parquet"), "--out"),
        (("export", "--db", str(db), "--run", "nope", "--format", "latex", "--out", str(out)), "--run"),
        (("export", "--db", str(db)), "--format"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    assert not out.exists() and not list(tmp_path.glob(".never*"))


def test_power_command_plans_examples_and_rejects_impossible_designs() -> None:
    from workbench.stats import power_paired_binary

    plan = run_json("power", "--baseline", "0.6", "--delta", "0.08", "--discordance", "0.25", "--comparisons", "4")
    reference = power_paired_binary(0.6, 0.08, power=0.8, discordance=0.25, comparisons=4)
    assert (plan["n"], plan["power"], plan["alpha_per_comparison"]) == (reference.n, reference.power, 0.0125)
    at_n = run_json("power", "--baseline", "0.5", "--delta", "0.1", "--n", "200", "--simulate", "60")
    assert at_n["n"] == 200 and 0.3 < at_n["power"] < 0.6 and at_n["simulated"]["studies"] == 60
    assert abs(at_n["simulated"]["power"] - at_n["power"]) < 4 * at_n["simulated"]["se"] + 0.05
    for args, message in ((("--baseline", "0.9", "--delta", "0.2"), "--delta"), (("--baseline", "0.5", "--delta", "0.1", "--discordance", "0.05"), "--discordance")):
        result = run_cli("power", *args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
