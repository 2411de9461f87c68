"""What `python -m bench` runs and prints: the machine, and each benchmark's figures with `met`
computed from value, goal and target."""

from __future__ import annotations

import importlib
import importlib.util
import operator
import os
import platform
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import BENCHMARKS

# How a value meets its target: the "at least" and "in under".
GOALS: dict[str, Callable[[float, float], bool]] = {"at_least": operator.ge, "below": operator.lt}
FIELDS = ("name", "value", "unit", "target", "goal", "met", "baseline", "detail")


def figure(name: str, value: float | None, unit: str, target: float | None, goal: str, baseline: float | None = None, detail: str = "") -> dict[str, Any]:
    """One measured figure, as a benchmark module returns it (the harness adds `met`)."""
    return {"name": name, "value": value, "unit": unit, "target": target, "goal": goal, "baseline": baseline, "detail": detail}


def met(entry: dict[str, Any]) -> bool | None:
    """Whether the value meets the target; None when either is missing (or no goal says how)."""
    compare = GOALS.get(entry.get("goal") or "")
    if compare is None or entry.get("value") is None or entry.get("target") is None:
        return entry.get("met") if isinstance(entry.get("met"), bool) else None
    return bool(compare(float(entry["value"]), float(entry["target"])))


def _complete(entry: dict[str, Any], benchmark: str) -> dict[str, Any]:
    done = {key: entry.get(key) for key in FIELDS} | {key: value for key, value in entry.items() if key not in FIELDS}
    done["benchmark"] = benchmark
    done["met"] = met(entry)
    done["detail"] = done["detail"] or ""
    return done


def _unavailable(benchmark: str, why: str) -> dict[str, Any]:
    return _complete({"name": benchmark, "detail": f"not available: {why}", "available": False}, benchmark)


def module_name(benchmark: str) -> str:
    return f"bench.bench_{benchmark}"


def run_benchmark(benchmark: str, quick: bool) -> list[dict[str, Any]]:
    """The figures of one benchmark; a module missing from this checkout, or one that needs a
    library not installed, gives one "not available" entry, and a failure one "failed" entry."""
    module = module_name(benchmark)
    if importlib.util.find_spec(module) is None:
        return [_unavailable(benchmark, f"{module} is not in this checkout")]
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as missing:
        return [_unavailable(benchmark, f"{module} needs {missing.name}, which is not installed")]
    started = time.perf_counter()
    try:
        entries = imported.run(quick)
    except Exception as error:  # noqa: BLE001 - one benchmark's failure is reported, the others still run
        last = traceback.extract_tb(error.__traceback__)[-1]
        return [_complete({"name": benchmark, "detail": f"failed: {type(error).__name__}: {error} ({last.filename}:{last.lineno})", "failed": True}, benchmark)]
    seconds = round(time.perf_counter() - started, 1)
    return [_complete(entry, benchmark) | {"seconds": seconds} for entry in entries]


def machine() -> dict[str, Any]:
    """The machine the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
        "memory_gib": _memory_gib(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _proc_field(path: str, field: str) -> str | None:
    try:
        with open(path) as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() == field:
                    return value.strip()
    except OSError:
        return None
    return None


def _memory_gib() -> float | None:
    total = _proc_field("/proc/meminfo", "MemTotal")  # "24564736 kB"
    return round(int(total.split()[0]) / 2**20, 1) if total else None


def run_all(names: list[str], quick: bool, progress: Callable[[str], None]) -> dict[str, Any]:
    """Every named benchmark in the registry's order, with the machine at the start."""
    report: dict[str, Any] = {"machine": machine(), "quick": quick, "figures": []}
    for benchmark in (name for name in BENCHMARKS if name in names):
        progress(f"bench: {benchmark} ...")
        report["figures"].extend(run_benchmark(benchmark, quick))
    return report
