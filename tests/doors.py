"""A model door for scorer tests: the providers' retried call, without a run around it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from workbench.core.messages import Messages, to_dicts
from workbench.providers import ModelRequest, TrialContext, complete_with_retries, open_pool
from workbench.scoring.scorers import Score, ScoreCase, score_trial
from workbench.core.calls import Generation
from workbench.providers.spec import ModelSpec
from workbench.tasks import TaskItem, TaskSpec


def score_with_judge(spec: ModelSpec, cases: list[tuple[TaskSpec, TaskItem, str]], seed: int = 7) -> tuple[list[Score], list[dict[str, Any]]]:
    """Score (task, item, text) cases with `spec` as the judge; returns the scores and the calls made."""
    calls: list[dict[str, Any]] = []

    async def main() -> list[Score]:
        pool = await asyncio.to_thread(open_pool, [spec], lambda _m: None)
        provider = pool.get(spec.id)

        async def door(messages: Messages, purpose: str = "answer", *, sim_targets: tuple[str, ...] | None = None) -> Generation:
            request = ModelRequest.build(spec.id, to_dicts(messages), {"seed": seed, **spec.params}, 0, purpose)
            outcome = await complete_with_retries(provider, request, TrialContext("test", sim_targets or (), seed), max_retries=1, timeout_s=spec.timeout_s)
            text = outcome.response.text if outcome.response else None
            calls.append({"purpose": purpose, "messages": to_dicts(messages), "response": text})
            return Generation(text=text, error=str(outcome.error) if outcome.error else None)

        judge: Callable[..., Awaitable[Generation]] = door
        try:
            return [await score_trial(ScoreCase(task, item, text, seed, judge, spec.id)) for task, item, text in cases]
        finally:
            await pool.close()

    return asyncio.run(main()), calls
