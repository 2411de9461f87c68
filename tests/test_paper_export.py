"""Exports that go into a paper as they are (issue 11, point 2): the `paper` layout in LaTeX
(compiled by pdflatex, read back from the PDF) and Markdown, formats named by the file, stdout,
every table in CSV and Parquet, the per-trial data, figures checked element by element, and
BibTeX (references.bib beside every export, `stimuli cite`, `tasks cite`) run through bibtex."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conftest import run_cli, run_json, sim_study, write_study
from test_export import compile_latex
from workbench.stats import compare, load_run

TASKS = ("ii/sum", "ii/diff", "ii/first_word_letter")
PLANTED = {"control": 0.45, "EP02": 0.9, "NP01": 0.3}


def tool(name: str) -> str:
    """A program of TeX Live or poppler-utils; missing is a failure (.ci/run installs them)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: apt-get install --no-install-recommends texlive-latex-base texlive-latex-recommended poppler-utils")
    return path


def pdf_text(pdf: Path) -> str:
    return subprocess.run([tool("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def export(*args: str) -> subprocess.CompletedProcess[str]:
    result = run_cli("export", *args)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def one_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One simulated model, three tasks, a planted gain (EP02) and a planted loss (NP01), some errors."""
    root = tmp_path_factory.mktemp("one")
    study = sim_study(name="paper table", tasks=[{"task": t, "n": 30} for t in TASKS])
    study["models"][0]["simulate"] = {"accuracy": PLANTED, "error_rate": 0.03}
    study["models"][0]["max_retries"] = 0
    db = root / "log.duckdb"
    return db, run_json("run", str(write_study(root / "s.yaml", study)), "--db", str(db))["run_id"]


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("two")
    models = [{"id": f"sim/{name}", "simulate": {"accuracy": PLANTED}} for name in ("alpha", "beta")]
    study = sim_study(name="two models", models=models, tasks=[{"task": t, "n": 10} for t in TASKS[:2]])
    db = root / "log.duckdb"
    run_json("run", str(write_study(root / "s.yaml", study)), "--db", str(db))
    return db


def per_task_rows(db: Path) -> list[dict]:
    return [r for r in run_json("compare", "--db", str(db))["rows"] if r["task"] != "all"]


# -- the paper layout ---------------------------------------------------------------------------


@pytest.mark.slow
def test_paper_layout_in_latex_compiles_and_prints_as_the_papers_do(one_model, tmp_path: Path) -> None:
    db, run_id = one_model
    tex = tmp_path / "paper.tex"
    export("--db", str(db), "--layout", "paper", "--relative", "--out", str(tex), "--standalone")
    text = tex.read_text()
    comments = [line for line in text.splitlines() if line.startswith("%")]
    body = "\n".join(line for line in text.splitlines() if not line.startswith("%"))
    caption = re.search(r"\\caption\{(.*?)\}\n", body).group(1)
    # the run id is in a comment, never in the caption; the one model is named once, in the caption
    assert any(run_id.replace("_", "\\_") in c or run_id in c for c in comments) and run_id not in body
    assert body.count("sim/planted") == 1 and "sim/planted" in caption
    assert "n = 30 paired examples per task" in caption and "exact McNemar" in caption and "Holm-adjusted" in caption
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert rule in body
    assert "Task & control & EP02 & NP01 \\\\" in body, "tasks as rows, conditions as columns, no model column"
    # each task's row: the best score in bold, marks as compare --json adjusts them
    rows = per_task_rows(db)
    for task in TASKS:
        line = next(line for line in body.splitlines() if line.startswith(task.removeprefix("ii/").replace("_", "\\_") + " &"))
        cells = line.removesuffix(" \\\\").split(" & ")[1:]
        mine = {r["condition"]: r for r in rows if r["task"] == task}
        best = max(round(r["accuracy"], 3) for r in mine.values())
        for condition, cell in zip(("control", "EP02", "NP01"), cells):
            row = mine[condition]
            assert ("\\textbf{" in cell) == (round(row["accuracy"], 3) == best), (task, condition, cell)
            p = row["p_adjusted"]
            stars = "" if p is None or p >= 0.05 else "***" if p < 0.001 else "**" if p < 0.01 else "*"
            assert (f"$^{{{stars}}}$" in cell) if stars else ("$^{" not in cell), (task, condition, cell, p)
    # proper minus signs: NP01's relative gains are negative; no hyphen stands for a minus
    assert "$-$" in body and not re.search(r"(?<![$\w])-\d", body)
    # notes under the table they explain: after the tabular, inside the float
    after = body[body.index("\\end{tabular}") : body.index("\\end{table}")]
    assert "Bold: the best score" in after and "Relative gain" in after and "Errored trials" in after
    compile_latex(tex)
    page = pdf_text(tex.with_suffix(".pdf"))
    assert "All tasks" in page and "Accuracy per task" in page and re.search(r"first.?word.?letter", page)
    png = tmp_path / "page"
    subprocess.run([tool("pdftoppm"), "-png", "-r", "60", "-f", "1", "-l", "1", str(tex.with_suffix(".pdf")), str(png)], check=True)
    assert next(tmp_path.glob("page*.png")).stat().st_size > 5000
    # a fragment \input twice into a document that loads only booktabs
    fragment = tmp_path / "table.tex"
    export("--db", str(db), "--layout", "paper", "--out", str(fragment))
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\\input{table.tex}\\input{table.tex}\\end{document}\n")
    assert compile_latex(doc) >= 1


def test_paper_layout_in_markdown_goes_to_stdout(one_model) -> None:
    db, run_id = one_model
    text = export("--db", str(db), "--layout", "paper", "--relative", "--format", "markdown").stdout
    lines = text.splitlines()
    assert lines[0].startswith("<!-- ") and run_id in lines[0] and run_id not in "\n".join(lines[1:])
    assert "| Task | control | EP02 | NP01 |" in lines and "| **All tasks** |" in text
    assert re.search(r"\*\*0\.\d{3}\*\*(\\\*)+ \(\+\d+\.\d%\)", text), "bold best, escaped marks, relative gain"
    assert "\u2212" in text, "a negative relative gain carries a minus sign"
    assert all(line.count("|") == lines[4].count("|") for line in lines if line.startswith("| "))


def test_several_models_get_a_panel_each(two_models, tmp_path: Path) -> None:
    tex = tmp_path / "two.tex"
    export("--db", str(two_models), "--layout", "paper", "--out", str(tex), "--standalone")
    body = tex.read_text()
    for model in ("sim/alpha", "sim/beta"):
        assert f"\\multicolumn{{4}}{{@{{}}l}}{{\\textit{{{model}}}}} \\\\" in body
    assert "one panel per model" in body and body.count("All tasks &") == 2
    compile_latex(tex)


# -- formats, stdout, every table ---------------------------------------------------------------


@pytest.mark.slow
def test_the_file_name_gives_the_format_and_csv_parquet_carry_every_table(one_model, tmp_path: Path) -> None:
    db, _ = one_model
    for name, check in (("t.md", lambda s: "| Model | Task |" in s), ("t.tex", lambda s: "\\begin{tabular}" in s), ("t.csv", lambda s: s.startswith("table,"))):
        export("--db", str(db), "--out", str(tmp_path / name))
        assert check((tmp_path / name).read_text()), name
    export("--db", str(db), "--out", str(tmp_path / "t.parquet"))
    parquet = pd.read_parquet(tmp_path / "t.parquet")
    tables = {"per_task", "across_tasks", "pooled", "omnibus", "format"}
    assert set(parquet["table"]) == tables
    assert parquet.loc[parquet["table"] == "pooled", "pooled_estimate"].notna().all()
    for args in (("--format", "csv"), ("--format", "csv", "--out", "-")):
        printed = export("--db", str(db), *args).stdout
        frame = pd.read_csv(io.StringIO(printed))
        assert set(frame["table"]) == tables and len(frame) == len(parquet)
        assert frame.loc[frame["table"] == "per_task", "accuracy"].tolist() == pytest.approx(parquet.loc[parquet["table"] == "per_task", "accuracy"].tolist())
    bad = {
        ("--out", str(tmp_path / "t.docx")): "cannot tell the format",
        ("--format", "parquet"): "parquet is binary",
        ("--format", "csv", "--out", str(tmp_path / "x.tex")): "names a latex file",
        ("--layout", "poster", "--out", str(tmp_path / "x.tex")): "--layout",
        ("--trials", str(tmp_path / "x.json")): "--trials",
    }
    for args, message in bad.items():
        result = run_cli("export", "--db", str(db), *args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    assert not (tmp_path / "x.tex").exists() and not (tmp_path / "t.docx").exists()


# -- per-trial data -------------------------------------------------------------------------------

FORMULAS = ["=HYPERLINK(\"http://x\")", "+1+1", "@SUM(A1)", "-2+3", "-5", "3.5"]


@pytest.fixture(scope="module")
def formula_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A custom task whose gold answers (and so the simulated model's right answers) look like
    spreadsheet formulas and numbers."""
    root = tmp_path_factory.mktemp("formulas")
    (root / "q.jsonl").write_text("".join(json.dumps({"input": f"q{i}", "target": t}) + "\n" for i, t in enumerate(FORMULAS)))
    task = {"task": "custom/formulas", "path": "q.jsonl", "metric": "em", "instruction": "Answer.", "n": len(FORMULAS)}
    study = sim_study(name="formulas", tasks=[task])
    study["models"][0]["simulate"] = {"default_accuracy": 1.0}
    db = root / "log.duckdb"
    run_json("run", str(write_study(root / "s.yaml", study)), "--db", str(db))
    return db


@pytest.mark.slow
def test_trials_export_has_the_columns_a_reader_needs_and_defuses_formulas(formula_log, tmp_path: Path) -> None:
    export("--db", str(formula_log), "--format", "trials.csv", "--out", str(tmp_path / "trials.csv"))
    export("--db", str(formula_log), "--trials", str(tmp_path / "trials.parquet"))
    twice = run_cli("export", "--db", str(formula_log), "--format", "trials.csv", "--trials", str(tmp_path / "again.csv"))
    assert twice.returncode == 2 and "asked for twice" in twice.stderr and not (tmp_path / "again.csv").exists()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "trials.csv").read_text())))
    needed = {"run_id", "model", "condition", "task", "example_id", "repeat", "seed", "score", "status", "extractor", "answer", "gold",
              "response", "consumes_gold", "prompt_tokens", "completion_tokens", "stimuli", "input"}
    assert needed <= set(rows[0]) and len(rows) == 3 * len(FORMULAS)
    responses = {r["response"] for r in rows}
    assert {"'=HYPERLINK(\"http://x\")", "'+1+1", "'@SUM(A1)", "'-2+3", "-5", "3.5"} == responses
    assert {r["condition"] for r in rows} == {"control", "EP02", "NP01"} and {r["stimuli"] for r in rows} == {"", "EP02", "NP01"}
    parquet = pd.read_parquet(tmp_path / "trials.parquet")
    assert set(parquet["response"]) == set(FORMULAS), "Parquet keeps the text as it is"
    assert parquet["score"].tolist() == [1.0] * len(parquet) and parquet["repeat"].dtype.kind == "i"
    con_rows = run_json("compare", "--db", str(formula_log))["rows"]
    assert sum(r["n"] for r in con_rows) == len(parquet)
    printed = export("--db", str(formula_log), "--trials", "-").stdout
    assert len(list(csv.DictReader(io.StringIO(printed)))) == len(rows)


def test_csv_cells_are_read_back_as_written() -> None:
    from workbench.export import csv_value

    assert [csv_value(v) for v in ("-5", "+3.5e2", "=1+1", "-1+2", "@x", "\tx", None, float("nan"), float("inf"), float("-inf"), 2)] == [
        "-5", "+3.5e2", "'=1+1", "'-1+2", "'@x", "'\tx", "", "", "Inf", "-Inf", 2
    ]


# -- figures ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_figures_are_ready_for_a_paper(one_model, two_models, tmp_path: Path) -> None:
    from workbench.export.figures import OKABE_ITO, forest_figure, heatmap_figure

    db, run_id = one_model
    export("--db", str(db), "--figures", str(tmp_path / "figs"))
    forest = pdf_text(tmp_path / "figs" / "forest.pdf")
    heat = pdf_text(tmp_path / "figs" / "heatmap.pdf")
    for text in (forest, heat):
        assert "sim/planted" not in text and run_id not in text, "no model prefix with one model, no run id on the figure"
        assert "n = 30" in text and "***" in text and "p < 0.05" in text
    for legend in ("one task", "all tasks (every example together)", "pooled across tasks (random effects)", "filled: significant", "open: not significant"):
        assert legend in forest.replace("\n", " "), legend
    assert re.search(r"\[[\u2212+]?0\.\d\d, [\u2212+]?0\.\d\d\]", heat), "the heatmap prints each interval"
    fonts = subprocess.run([tool("pdffonts"), str(tmp_path / "figs" / "forest.pdf")], capture_output=True, text=True, check=True).stdout
    assert "TrueType" in fonts and "Type 3" not in fonts, "vector text with embedded TrueType fonts"
    assert (tmp_path / "figs" / "forest.png").stat().st_size > 20000
    # the elements, read from the figures before they are saved
    data = load_run(db)
    result = compare(data.frame, data.control, order=data.conditions, task_order=data.tasks)
    figure = forest_figure(result)
    ax = figure.axes[0]
    assert ax.get_legend() is not None and ax.get_title() == "" and not figure._suptitle
    colours = {line.get_color() for line in ax.get_lines() if line.get_marker() not in ("None", None, "")}
    assert colours and colours <= {c.lower() for c in OKABE_ITO} | set(OKABE_ITO)
    cells = [t.get_text() for a in heatmap_figure(result).axes for t in a.texts]
    assert any("***" in c and "[" in c for c in cells)
    two = load_run(two_models)
    labels = [t.get_text() for t in forest_figure(compare(two.frame, two.control)).axes[0].get_yticklabels()]
    assert all(label.startswith(("sim/alpha · ", "sim/beta · ")) for label in labels), "several models: each label names its model"


# -- references -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_references_bib_is_written_beside_every_export_and_bibtex_reads_it(one_model, tmp_path: Path) -> None:
    db, _ = one_model
    (tmp_path / "tables").mkdir()
    export("--db", str(db), "--layout", "paper", "--out", str(tmp_path / "tables" / "t.tex"), "--trials", str(tmp_path / "data" / "t.csv"),
           "--figures", str(tmp_path / "figs"))
    bibs = [tmp_path / d / "references.bib" for d in ("tables", "data", "figs")]
    assert all(b.exists() for b in bibs) and len({b.read_text() for b in bibs}) == 1
    bib = bibs[0].read_text()
    keys = re.findall(r"^@\w+\{([^,]+),", bib, flags=re.M)
    assert sorted(keys) == sorted(["li2023emotionprompt", "wang2024negativeprompt", "honovich2023instruction", "promptaffectworkbench"])
    assert "chittem2025sac" not in bib, "only the entries the run used"
    doc = tmp_path / "tables" / "cite.tex"
    doc.write_text("\\documentclass{article}\\begin{document}Cited.\\nocite{*}\\bibliographystyle{plain}\\bibliography{references}\\end{document}\n")
    compile_latex(doc)
    run = subprocess.run([tool("bibtex"), "cite"], cwd=doc.parent, capture_output=True, text=True)
    assert run.returncode == 0 and "error" not in run.stdout.lower(), run.stdout
    compile_latex(doc)
    printed = " ".join(pdf_text(doc.with_suffix(".pdf")).split())
    assert "Large Language Models Understand" in printed.replace("- ", "") and "Prompt-Affect Workbench" in printed, printed
    # a references.bib of the user's own is never overwritten, and nothing else is written either
    own = tmp_path / "mine"
    own.mkdir()
    (own / "references.bib").write_text("@misc{mine, title={Mine}}\n")
    refused = run_cli("export", "--db", str(db), "--out", str(own / "t.tex"))
    assert refused.returncode == 2 and "not written by the workbench" in refused.stderr and not (own / "t.tex").exists()
    export("--db", str(db), "--out", str(own / "t.tex"), "--no-bib")
    assert (own / "references.bib").read_text() == "@misc{mine, title={Mine}}\n"


def _library_references() -> list[tuple[str, str, Any]]:
    """(where, its free-text citation, reference) for every structured reference of the data files."""
    from workbench.stimuli import builtin_library
    from workbench.tasks import builtin_tasks

    library = builtin_library()
    found = [(f"family {f}", (library.family(f).citation or "") + (library.family(f).inspired_by or ""), r)
             for f in library.families() for r in library.family(f).references]
    found += [(f"task {t}", spec.citation or "", r) for t, spec in builtin_tasks().items() for r in spec.references]
    return found


def test_structured_references_agree_with_the_citations_they_stand_for() -> None:
    from workbench.stimuli import builtin_library
    from workbench.tasks import builtin_tasks

    found = _library_references()
    by_key: dict[str, Any] = {}
    for where, citation, reference in found:
        assert reference.eprint and f"arXiv:{reference.eprint}" in citation.replace("arXiv: ", "arXiv:"), (where, reference.key)
        surname = reference.author[0].split(",")[0]
        assert surname in citation, (where, surname)
        assert by_key.setdefault(reference.key, reference) == reference, f"{reference.key} differs between files"
    library = builtin_library()
    for name in library.families():
        family = library.family(name)
        assert family.references, f"family {name} has no structured reference"
        assert family.authored or family.citation, name
    uncited = [t for t, spec in builtin_tasks().items() if spec.citation and "arXiv" in spec.citation and not spec.references]
    assert not uncited


@pytest.mark.slow
def test_cite_commands_print_bibtex_for_families_ids_tasks_and_suites() -> None:
    family = run_cli("stimuli", "cite", "negativeprompt")
    by_id = run_cli("stimuli", "cite", "NP03")
    assert family.returncode == 0 and family.stdout == by_id.stdout
    assert "@inproceedings{wang2024negativeprompt," in family.stdout and "promptaffectworkbench" not in family.stdout
    authored = run_cli("stimuli", "cite", "HEART/anger/1").stdout
    assert "@misc{pinto2025heart," in authored and "@misc{promptaffectworkbench," in authored and "texts authored by the workbench" in authored
    suite = run_cli("tasks", "cite", "bbh").stdout
    assert "@article{srivastava2023bigbench," in suite and "@inproceedings{zhou2023ape," in suite and suite.count("% task bbh/") == 21
    task = run_cli("tasks", "cite", "inventory/mpi120").stdout
    assert re.findall(r"^@\w+\{([^,]+),", task, flags=re.M) == ["jiang2023mpi"]
    for args in (("stimuli", "cite", "EP99"), ("tasks", "cite", "ii/nope")):
        result = run_cli(*args)
        assert result.returncode == 2 and "no " in result.stderr and "Traceback" not in result.stderr


# -- the real model -------------------------------------------------------------------------------


@pytest.mark.local_model
@pytest.mark.slow
def test_a_real_run_exports_a_paper_table_trials_figures_and_references(local_server, tmp_path: Path) -> None:
    study = sim_study(name="real paper export", tasks=[{"task": "ii/sum", "n": 6}, {"task": "ii/first_word_letter", "n": 6}],
                      conditions=[{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}])
    study["models"] = [{"id": "local/default", "params": {"temperature": 0.0, "max_tokens": 16}}]
    db = tmp_path / "log.duckdb"
    run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    tex = tmp_path / "out" / "paper.tex"
    export("--db", str(db), "--layout", "paper", "--relative", "--out", str(tex), "--standalone", "--trials", str(tmp_path / "out" / "trials.csv"),
           "--figures", str(tmp_path / "out" / "figs"))
    assert "local/default" in re.search(r"\\caption\{(.*?)\}\n", tex.read_text()).group(1)
    compile_latex(tex)
    trials = pd.read_csv(tmp_path / "out" / "trials.csv", keep_default_na=False)
    assert len(trials) == 24 and set(trials["status"]) <= {"ok", "error", "no_answer"} and (trials["response"] != "").any()
    assert "n = 6" in pdf_text(tmp_path / "out" / "figs" / "forest.pdf")
    assert "@misc{li2023emotionprompt," in (tmp_path / "out" / "references.bib").read_text()
