"""The installed package finds stimuli/, tasks/ and studies/, not only a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO


def test_wheel_carries_the_data_directories(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    wheel = next(tmp_path.glob("prompt_affect_workbench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for directory in ("stimuli", "tasks", "studies"):
        shipped = {p.relative_to(REPO).as_posix() for p in (REPO / directory).rglob("*.yaml")}
        assert shipped, directory
        for path in shipped:
            assert f"workbench/_data/{path}" in names, path


def test_installed_layout_is_found_before_the_checkout(tmp_path: Path) -> None:
    """paths.data_dir prefers the bundled copy: simulate an installed package without a checkout."""
    import shutil

    package = tmp_path / "site" / "workbench"
    shutil.copytree(REPO / "workbench", package, ignore=shutil.ignore_patterns("__pycache__"))
    for directory in ("stimuli", "tasks", "studies"):
        shutil.copytree(REPO / directory, package / "_data" / directory)
    code = "import workbench.core.paths as p; print(p.data_dir('stimuli'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")})
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == package / "_data" / "stimuli"
