"""One place loads every plugin (workbench/plugins.py): whatever a process imported first, it
finds the same registries; and an installed package adds a provider, a stimulus family and a
task source through entry points, without an edit to the workbench (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_cli

# Prints every registry's names after load_builtins(), then again after importing every module of
# the package: a registration that only some import makes shows as a difference.
DUMP = textwrap.dedent(
    """
    import contextlib, importlib, io, json, pkgutil, sys
    with contextlib.redirect_stdout(io.StringIO()):
    {prelude}
    from workbench.core.registry import Registry

    def dump():
        found = {{}}
        for name in sorted(m for m in sys.modules if m.startswith("workbench")):
            for value in vars(sys.modules[name]).values():
                if isinstance(value, Registry):
                    found[value.kind] = value.names()
        return found

    loaded = dump()
    import workbench
    for module in pkgutil.walk_packages(workbench.__path__, "workbench."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    print(json.dumps({{"loaded": loaded, "everything": dump()}}))
    """
)

# Each entry point does its own work in a fresh interpreter (none calls load_builtins by hand
# except the loader's own line): what it registered on the way is then compared.
SIM_STUDY = {
    "name": "entry", "models": [{"id": "sim/m", "simulate": {"default_accuracy": 0.5}}],
    "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}], "tasks": [{"task": "ii/sum", "n": 2}],
}
PRELUDES = {
    "only the loader": "from workbench.plugins import load_builtins; load_builtins()",
    "the CLI": "import sys; from workbench.cli import main; sys.argv = ['workbench', 'tasks', 'list']; "
    "main()",
    "the library API": "from workbench import api; api.plan({study!r}, {db!r})",
    "a worker executing one pickled trial": "import pickle; from workbench.run.execute import execute_alone; "
    "trial, settings = pickle.loads(open({sent!r}, 'rb').read()); execute_alone(trial, settings)",
    "solvers, stimuli and tasks imported first, in another order, then the loader": "import workbench.solvers.heart, workbench.tasks.judge, "
    "workbench.stimuli.catalog, workbench.solvers; from workbench.plugins import load_builtins; load_builtins()",
}


def _dump(prelude: str, env: dict[str, str] | None = None) -> dict[str, dict[str, list[str]]]:
    code = DUMP.format(prelude="    " + prelude)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _pickled_trial(tmp_path: Path) -> Path:
    """A trial of the simulated study and its gateway settings, pickled as a scheduler sends them."""
    import pickle

    from workbench.run.scheduler import gateway_settings
    from workbench.study.expand import expand
    from workbench.study.spec import load_study

    study = load_study(tmp_path / "entry.yaml")
    trials = expand(study, "entry")
    sent = tmp_path / "trial.pickle"
    sent.write_bytes(pickle.dumps((trials[1], gateway_settings(study, trials[:2], use_cache=False))))
    return sent


@pytest.mark.slow
def test_every_entry_point_finds_the_same_registries(tmp_path: Path) -> None:
    (tmp_path / "entry.yaml").write_text(yaml.safe_dump(SIM_STUDY))
    places = {"study": str(tmp_path / "entry.yaml"), "db": str(tmp_path / "entry.duckdb"), "sent": str(_pickled_trial(tmp_path))}
    dumps = {label: _dump(prelude.format(**places)) for label, prelude in PRELUDES.items()}
    reference = dumps["only the loader"]["everything"]
    assert reference["solver"] == ["dspy", "heart", "multi_agent", "single_turn"]
    assert {"sim", "local", "litellm"} <= set(reference["provider"])
    assert {"traits", "perspectives", "sac_induced"} <= set(reference["report"])
    for label, found in dumps.items():
        # what load_builtins registered is all there is: importing every module adds nothing
        for kind, names in found["loaded"].items():
            assert names == found["everything"][kind], f"{label}: {kind}"
        assert found["everything"] == reference, label
        for kind in ("solver", "solver setup", "provider", "report", "renderer", "task item source", "scorer", "rubric kind", "extractor"):
            assert found["loaded"].get(kind), f"{label}: no {kind} registered by load_builtins"


PLUGIN = '''
"""A third-party workbench plugin: a provider, a stimulus family and a task source."""
from pathlib import Path

HERE = Path(__file__).parent


class EchoProvider:
    """Answers with the last line of the prompt's input (the number the task shows)."""

    endpoint = "echo"

    async def complete(self, request, context, attempt):
        from workbench.providers.base import ModelResponse

        return ModelResponse(text=request.messages[-1][1].split("Input: ")[-1].split()[0])

    def cache_scope(self, context):
        return ""

    async def close(self):
        return None


def register_provider():
    from workbench.providers.kinds import PROVIDERS, ProviderKind

    PROVIDERS.add("echo", ProviderKind(build=lambda spec, server_base: EchoProvider()))


def register_family():
    from workbench.stimuli.library import FAMILY_DIRS

    FAMILY_DIRS.add("wb_echo_plugin", HERE / "stimuli")


def register_tasks():
    from workbench.tasks import SOURCES, SUITE_DIRS, TaskItem

    def numbers(spec, n, seed):
        return [TaskItem(id=f"{i:03d}", input=str(100 + i), targets=(str(100 + i),)) for i in range(n)]

    SOURCES.add("echo.numbers", numbers)
    SUITE_DIRS.add("wb_echo_plugin", HERE / "tasks")
'''

FAMILY = {
    "family": "plugin_kindness",
    "version": "1",
    "authored": True,
    "inspired_by": "A test of the workbench's plugin entry points.",
    "defaults": {"placement": "prefix", "separator": "space"},
    "items": [{"id": "KIND01", "text": "Please take your time."}],
}
SUITE = {
    "suite": "echo",
    "version": "1",
    "description": "Numbers to repeat (a plugin's task source).",
    "template": {"system": "You repeat numbers.", "user": "{instruction}\nInput: {input}\nAnswer: ", "demo": "Input: {input}\nAnswer: {output}", "demo_joiner": "\n"},
    "defaults": {"parser": "first_line", "metric": "em"},
    "tasks": [{"name": "numbers", "instruction": "Repeat the number.", "source": "echo.numbers", "authored": True, "n_available": 50}],
}
ENTRY_POINTS = """[workbench.providers]
echo = wb_echo_plugin:register_provider

[workbench.stimulus_families]
kindness = wb_echo_plugin:register_family

[workbench.task_sources]
numbers = wb_echo_plugin:register_tasks
"""


@pytest.fixture
def plugin_site(tmp_path: Path) -> dict[str, str]:
    """A distribution installed into a directory of its own: the package, its dist-info with the
    entry points; a subprocess with it on PYTHONPATH sees it as an installed package."""
    site = tmp_path / "site"
    package = site / "wb_echo_plugin"
    (package / "stimuli").mkdir(parents=True)
    (package / "tasks").mkdir()
    (package / "__init__.py").write_text(PLUGIN)
    (package / "stimuli" / "kindness.yaml").write_text(yaml.safe_dump(FAMILY, sort_keys=False))
    (package / "tasks" / "echo.yaml").write_text(yaml.safe_dump(SUITE, sort_keys=False))
    info = site / "wb_echo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wb-echo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", str(REPO))])}


@pytest.mark.slow
def test_an_installed_package_adds_a_provider_a_family_and_a_task_source(plugin_site: dict[str, str], tmp_path: Path) -> None:
    families = run_cli("stimuli", "list", env=plugin_site)
    assert families.returncode == 0, families.stderr
    assert "KIND01" in families.stdout and "KIND01" not in run_cli("stimuli", "list").stdout
    tasks = run_cli("tasks", "list", env=plugin_site)
    assert tasks.returncode == 0, tasks.stderr
    assert "echo/numbers" in tasks.stdout

    study = {
        "name": "plugin",
        "models": [{"id": "echo/one"}],
        "conditions": [{"name": "control"}, {"name": "kind", "stimuli": ["KIND01"]}],
        "tasks": [{"task": "echo/numbers", "n": 4, "shots": 0}],
        "seed": 0,
    }
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    done = run_cli("run", str(path), "--db", str(tmp_path / "plugin.duckdb"), "--json", env=plugin_site)
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)["conditions"]}
    assert {name: (row["n"], row["errors"], row["accuracy"]) for name, row in rows.items()} == {"control": (4, 0, 1.0), "kind": (4, 0, 1.0)}

    without = run_cli("run", str(path), "--db", str(tmp_path / "other.duckdb"), env={})
    assert without.returncode == 2 and "echo/numbers" in without.stderr  # not installed: the task is unknown
