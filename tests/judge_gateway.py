"""A judge for scorer tests: the run's gateway (retried calls, no cache), without a run around it."""

from __future__ import annotations

import asyncio
from typing import Any

from workbench.core.messages import Messages, to_dicts
from workbench.providers import ModelRequest, TrialContext
from workbench.run.gateway import GatewaySettings
from workbench.scoring.scorers import Score, ScoreCase, score_trial
from workbench.core.calls import Generate, Generation
from workbench.providers.spec import ModelSpec
from workbench.tasks import TaskItem, TaskSpec


def score_with_judge(spec: ModelSpec, cases: list[tuple[TaskSpec, TaskItem, str]], seed: int = 7) -> tuple[list[Score], list[dict[str, Any]]]:
    """Score (task, item, text) cases with `spec` as the judge; returns the scores and the calls made."""
    calls: list[dict[str, Any]] = []
    judge = spec.model_copy(update={"max_retries": 1})

    async def main() -> list[Score]:
        gateway = await GatewaySettings(models=(judge,), judge=judge, use_cache=False).open()

        async def generate(messages: Messages, purpose: str = "answer", *, sim_targets: tuple[str, ...] | None = None) -> Generation:
            request = ModelRequest.build(judge.id, to_dicts(messages), {"seed": seed, **judge.params}, 0, purpose)
            result = await gateway.call(judge, request, TrialContext("test", sim_targets or (), seed))
            text = result.response.text if result.response else None
            calls.append({"purpose": purpose, "messages": to_dicts(messages), "response": text})
            return Generation(text=text, error=str(result.error) if result.error else None)

        as_judge: Generate = generate
        try:
            return [await score_trial(ScoreCase(task, item, text, seed, as_judge, judge.id)) for task, item, text in cases]
        finally:
            await gateway.close()

    return asyncio.run(main()), calls
