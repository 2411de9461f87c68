"""The workbench's benchmarks: `python -m bench [--quick] [--json] [--only NAME]`.

Each benchmark is a module `bench.bench_NAME` with `run(quick: bool) -> list[dict]`, one dict per
figure: name, value, unit, target, goal ("at_least" or "below", how value meets target),
baseline (what a ratio's value is measured against, in the same run) and detail. The harness
(bench/harness.py) computes `met` from value, goal and target; a module absent from this
checkout, or whose libraries are not installed, is listed as not available.
"""

# Run in this order; `python -m bench --only NAME` runs one.
BENCHMARKS: list[str] = ["runner", "server", "scale", "ray", "stats", "ui"]
