"""The Export page offers, byte for byte, the files `workbench export` (the CLI, a subprocess)
writes for the same log, run and options; an export of one log is the same bytes every time."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO, run_cli, sim_study, write_study
from ui_downloads import Downloads, recorded_downloads
from workbench import api
from workbench.ui.common import md_text

PAGE = str(REPO / "workbench" / "ui" / "pages" / "export.py")


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("export")
    study = sim_study(name="export <b>&</b> [x](y)", tasks=[{"task": "ii/sum", "n": 12}, {"task": "ii/diff", "n": 12}])
    result = api.run(write_study(root / "s.yaml", study), root / "log.duckdb")
    return root / "log.duckdb", result.run_id


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> Downloads:
    return recorded_downloads(monkeypatch)


def labelled(widgets, label: str):
    return next(w for w in widgets if w.label == label)


@pytest.mark.slow  # the figures rendered twice and three CLI processes: 14 s
def test_the_downloads_are_what_workbench_export_writes(log: tuple[Path, str], downloads: Downloads, tmp_path: Path) -> None:
    db, run_id = log
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["db"] = str(db)
    at.run()
    labelled(at.radio, "Layout").set_value("paper")
    labelled(at.checkbox, "Relative gains").check()
    labelled(at.selectbox, "Correction").set_value("bh")
    labelled(at.radio, "Trials format").set_value("Parquet")
    at.run()
    assert not at.exception
    assert [b.label for b in at.get("download_button")] == [
        "Download LaTeX", "Download Markdown", "Download CSV", "Download references.bib", "Download trials", "Download figures",
    ]

    out = tmp_path / "cli"
    options = ("--db", str(db), "--run", run_id, "--layout", "paper", "--relative", "--adjust", "bh")
    for args in (("--out", str(out / "table.tex"), "--trials", str(out / "trials.parquet"), "--figures", str(out / "figures")),
                 ("--out", str(out / "table.md")), ("--out", str(out / "table.csv"))):
        result = run_cli("export", *options, *args)
        assert result.returncode == 0, result.stderr
    for name in ("table.tex", "table.md", "table.csv", "references.bib", "trials.parquet"):
        assert downloads.content(name) == (out / name).read_bytes(), name
    figures = zipfile.ZipFile(io.BytesIO(downloads.content("figures.zip")))
    written = sorted(p.name for p in (out / "figures").iterdir())
    assert sorted(figures.namelist()) == written == ["forest.pdf", "forest.png", "heatmap.pdf", "heatmap.png", "references.bib"]
    for name in written:
        assert figures.read(name) == (out / "figures" / name).read_bytes(), name


def test_an_export_of_one_log_is_the_same_bytes_every_time(log: tuple[Path, str], tmp_path: Path) -> None:
    """The PDFs' date is the run's start, from the log, not the clock: two exports a second apart agree."""
    db, run_id = log
    first, second = tmp_path / "a", tmp_path / "b"
    api.export(db, run_id, out=str(first / "t.tex"), figures=first / "figures")
    time.sleep(1.1)  # the PDF's date has seconds
    api.export(db, run_id, out=str(second / "t.tex"), figures=second / "figures")
    for path in sorted(first.rglob("*.*")):
        assert path.read_bytes() == (second / path.relative_to(first)).read_bytes(), path.name
    files = api.export_files(db, run_id, figures=True)
    assert files.figures_zip() == api.export_files(db, run_id, figures=True).figures_zip()


def test_a_run_without_trials_is_said_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    stopped = api.StopHandle()
    stopped.stop()  # the run registers, then stops before its first trial
    run_id = api.run(write_study(tmp_path / "s.yaml", sim_study()), db, stop=stopped).run_id
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["db"] = str(db)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [md_text(f"{db}: run {run_id} has no trials yet")]
    assert not at.get("download_button")


def test_bad_download_requests_are_refused_in_one_line(log: tuple[Path, str]) -> None:
    db, run_id = log
    with pytest.raises(api.UserError, match=r"--format: 'trials.csv' is not allowed \(allowed: csv, latex, markdown, parquet\)"):
        api.export_files(db, run_id, tables=("trials.csv",))
    with pytest.raises(api.UserError, match=r"--trials: 'csv' is not allowed \(allowed: trials.csv, trials.parquet\)"):
        api.export_files(db, run_id, trials="csv")
    with pytest.raises(api.UserError, match="--layout"):
        api.export_files(db, run_id, layout="poster")
