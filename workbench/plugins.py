"""The one place that loads every plugin: the built-in ones, then those installed packages declare.

A plugin registers its parts in the registries when its module is imported (solvers in
`workbench.solvers.base.SOLVERS`, stimulus renderers and family files, task item sources and suite
files, scorers and rubric kinds, reports, providers, extractors). Every entry point (the CLI, the
library API, a worker process that executes one trial) calls `load_builtins()` first, so what is
registered never depends on what happened to be imported before.

Built-ins are named here as strings and imported late, as entry points are: this module sits
at the bottom of the layers (it imports nothing of the workbench), so any layer may call it.

Third-party packages declare entry points in these groups (pyproject.toml:
`[project.entry-points."workbench.providers"] mine = "my_package.provider"`). An entry point
names a module, whose import registers its parts as the built-ins' do, or a function, which is
called with no arguments to register them.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from importlib.metadata import entry_points

# Modules that register parts when imported, by what they register.
BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "extractors and answer types": ("workbench.scoring.answers", "workbench.scoring.extract"),
    "parsers, metrics and scorer profiles": ("workbench.scoring.metrics", "workbench.scoring.profiles"),
    "scorers": ("workbench.scoring.scorers",),
    "solvers": (
        "workbench.solvers.base",
        "workbench.solvers.multi_agent",
        "workbench.solvers.heart",
        "workbench.solvers.dspy_programs",
    ),
    "providers": ("workbench.providers.simulated", "workbench.providers.litellm_provider"),
    "reports": ("workbench.reports",),
}
# Packages whose every module is a plugin (a new family or task source is a module and a YAML file).
DISCOVERED_PACKAGES: dict[str, str] = {
    "stimulus families (renderers, placements)": "workbench.stimuli",
    "task sources, parsers, metrics and rubric kinds": "workbench.tasks",
}
ENTRY_POINT_GROUPS = (
    "workbench.providers",
    "workbench.stimulus_families",
    "workbench.task_sources",
    "workbench.solvers",
    "workbench.scorers",
    "workbench.reports",
)

_loaded = False
_loading = False  # set while loading: a plugin that reads a registry on import calls back in
_lock = threading.RLock()  # a UI or a thread pool may call it from several threads at once


def load_builtins() -> None:
    """Import every built-in plugin, then every installed package's `workbench.*` entry points.
    Idempotent: later calls return at once."""
    global _loaded, _loading
    if _loaded:
        return
    with _lock:
        if _loaded or _loading:
            return
        _loading = True
        try:
            _load()
        finally:
            _loading = False
        _loaded = True


def _load() -> None:
    """The built-ins, the discovered packages' modules, then the entry points (sorted by name)."""
    for modules in BUILTIN_MODULES.values():
        for name in modules:
            importlib.import_module(name)
    for package_name in DISCOVERED_PACKAGES.values():
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{module.name}")
    for group in ENTRY_POINT_GROUPS:
        for entry in sorted(entry_points(group=group), key=lambda e: e.name):
            loaded = entry.load()
            if callable(loaded):
                loaded()
