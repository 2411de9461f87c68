"""Real server: the runner's throughput against the embedded llama.cpp server (local/default)
beside a bare litellm client loop sending the same requests to the same server at the same
concurrency, in the same run. Target (issue 16): the runner at 0.95 of the bare loop or more.

Both sides send every trial's answer request (gateway.call_for: the same messages and params);
the runner writes its log (cache off, so every trial calls the model), the bare loop only awaits
`litellm.acompletion`. A few calls warm the server first; the bare loop runs before and after the
runner and their mean throughput is the baseline (a server's speed drifts on a shared machine).

    python -m bench --only server [--quick]
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.harness import figure
from workbench.providers import ModelRequest
from workbench.providers.litellm_provider import LOCAL_API_KEY, _litellm
from workbench.providers.local_models import LOCAL_MODELS, ensure_server
from workbench.run.gateway import call_for
from workbench.run.scheduler import Runner
from workbench.study.expand import expand
from workbench.study.spec import ResolvedStudy, StudySpec, resolve_study

MODEL = "local/default"
CONCURRENCY = 4
QUICK_EXAMPLES, FULL_EXAMPLES = 6, 40  # x 2 conditions
WARM_CALLS = 4
TARGET_RATIO = 0.95


def _study(examples: int) -> ResolvedStudy:
    spec = StudySpec.model_validate(
        {
            "name": "bench-server",
            "models": [{"id": MODEL, "params": {"temperature": 0.0, "max_tokens": 16}}],
            "conditions": [{"name": "control"}, {"name": "EP02", "stimuli": ["EP02"]}],
            "tasks": [{"task": "ii/sum", "n": examples}],
            "concurrency": CONCURRENCY,
        }
    )
    return resolve_study(spec, "bench")


def _requests(study: ResolvedStudy) -> list[ModelRequest]:
    return [call_for(trial, trial.model, trial.messages, "answer", 0)[0] for trial in expand(study, "bench")]


async def _bare(requests: list[ModelRequest], api_base: str) -> float:
    """Seconds for a bare litellm loop to send every request, CONCURRENCY at a time."""
    litellm = _litellm()
    model = f"openai/{LOCAL_MODELS[MODEL].alias}"
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(request: ModelRequest) -> None:
        async with gate:
            await litellm.acompletion(
                model=model, messages=request.message_dicts(), api_base=api_base, api_key=LOCAL_API_KEY, num_retries=0, drop_params=True, **dict(request.params)
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(request) for request in requests))
    return time.perf_counter() - started


def _runner(study: ResolvedStudy) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = asyncio.run(Runner(study, Path(tmp) / "server.duckdb", use_cache=False).run())
        return time.perf_counter() - started, summary.trials_done


def run(quick: bool) -> list[dict[str, object]]:
    study = _study(QUICK_EXAMPLES if quick else FULL_EXAMPLES)
    requests = _requests(study)
    server = ensure_server(MODEL)  # held for the whole benchmark, so the runner finds it running
    try:
        asyncio.run(_bare(requests[:WARM_CALLS], server.api_base))
        before = asyncio.run(_bare(requests, server.api_base))
        runner_s, done = _runner(study)
        after = asyncio.run(_bare(requests, server.api_base))
    finally:
        server.release()
    n = len(requests)
    if done != n:
        raise RuntimeError(f"the runner finished {done} of {n} trials")
    bare_per_s = (n / before + n / after) / 2
    runner_per_s = n / runner_s
    detail = (
        f"{n} trials (2 conditions x {n // 2} ii/sum examples, max_tokens 16) on {MODEL} at concurrency {CONCURRENCY}; "
        f"runner {runner_per_s:.2f} trials/s (its whole run: plan, log, compaction); bare litellm loop "
        f"{n / before:.2f} and {n / after:.2f} calls/s before and after it (baseline: their mean)"
    )
    return [figure("runner / bare litellm loop on the llama.cpp server", round(runner_per_s / bare_per_s, 3), "ratio", TARGET_RATIO, "at_least", round(bare_per_s, 3), detail)]
