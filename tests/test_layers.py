"""The layout shows the pipeline: no layer imports a layer above it, and the package's parts
import one another without a circle; type-only imports count (issue 12).

The layers are the `[tool.importlinter]` contract in pyproject.toml, checked by import-linter;
the circles by grimp, the graph library import-linter is built on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parent.parent


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("workbench", include_external_packages=False, exclude_type_checking_imports=False)


def test_no_layer_imports_a_layer_above_it() -> None:
    # a subprocess: lint-imports builds its own graph of the package as it is on disk
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_the_parts_of_the_package_import_each_other_without_a_circle() -> None:
    graph = _graph()
    parts = graph.find_children("workbench")
    assert {"workbench.core", "workbench.solvers", "workbench.study", "workbench.plugins"} <= parts
    assert graph.nominate_cycle_breakers("workbench") == set()


def test_the_circle_check_sees_a_circle_and_a_type_only_import() -> None:
    """The check is not blind: one import from the bottom to the top makes a circle it names, and
    a type-only import is in the graph it reads (solvers/heart/loop.py's `Trial` once was)."""
    graph = _graph()
    graph.add_import(importer="workbench.core.registry", imported="workbench.solvers.base")
    assert graph.nominate_cycle_breakers("workbench")
    typed = [d for d in _graph().get_import_details(importer="workbench.scoring.extract", imported="workbench.core.items")]
    assert typed, "the TYPE_CHECKING import of TaskItem in scoring/extract.py is missing from the graph"


def _circles(graph: grimp.ImportGraph) -> list[set[str]]:
    """The import graph's strongly connected components of more than one module (Tarjan's, iterative)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, at = work.pop()
            if at == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = edges.get(node, [])
            if at < len(targets):
                work.append((node, at + 1))
                target = targets[at]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                part = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    part.add(member)
                    if member == node:
                        break
                if len(part) > 1:
                    found.append(part)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def test_no_module_imports_itself_through_others() -> None:
    """Within packages too: scoring/extract.py and scoring/scorers.py once imported each other."""
    assert _circles(_graph()) == []
    circled = _graph()
    circled.add_import(importer="workbench.scoring.answers", imported="workbench.scoring.scorers")
    assert {"workbench.scoring.answers", "workbench.scoring.scorers"} <= set().union(*_circles(circled))
