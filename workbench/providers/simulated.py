"""`sim/<name>`: an in-process model with planted per-condition accuracy, for fast tests,
statistical validation and benchmarks. Seeded: the same trial gives the same answer.

It is the one model that reads the gold (to plant its effects), through the trial context, and
only inside the runner's model call (workbench/gold.py, phase `provider`)."""

from __future__ import annotations

import asyncio
import random

from ..core.calls import JUDGE_PURPOSE
from .spec import ModelSpec, SimulatorSpec
from ..core.seeds import stable_seed
from .base import ModelRequest, ModelResponse, ProviderError, TrialContext
from .kinds import PROVIDERS, ProviderKind


class SimulatedProvider:
    endpoint = "simulator"

    def __init__(self, spec: ModelSpec) -> None:
        self.model_id = spec.id
        self.sim = spec.simulate or SimulatorSpec()
        self.answers_at_once = not self.sim.latency_ms  # it awaits only its simulated latency

    async def complete(self, request: ModelRequest, context: TrialContext, attempt: int) -> ModelResponse:
        if self.sim.latency_ms:
            await asyncio.sleep(self.sim.latency_ms / 1000)
        # A trial's later attempt (on resume) draws its errors anew, as a service that was down may be up again;
        # its first attempt draws as it always did.
        again = (context.trial_attempt,) if context.trial_attempt > 1 else ()
        if self.sim.error_rate and random.Random(stable_seed(context.seed, context.condition, request.repeat, context.call_index, attempt, "error", *again)).random() < self.sim.error_rate:
            raise ProviderError("simulated service error", kind="server_error", transient=True)
        rng = random.Random(stable_seed(self.model_id, context.seed, context.condition, request.repeat, context.call_index))
        gold = context.targets[0] if context.targets else ""  # sealed gold opens only inside the runner's provider phase
        if request.purpose.startswith(JUDGE_PURPOSE):
            text = _judge(request, gold, rng.random() < self.sim.judge_accuracy)
        else:
            p = self.sim.accuracy.get(context.condition, self.sim.default_accuracy)
            draw = rng.random()
            if self.sim.shared_difficulty:
                example = random.Random(stable_seed(self.model_id, context.seed, request.repeat, context.call_index, "difficulty"))
                if example.random() < self.sim.shared_difficulty:
                    draw = example.random()
            planted = gold if draw < p else _wrong(gold, context.targets, context.choices, rng)
            text = ANSWER_FORMATS[self.sim.answer_format.get(context.condition, self.sim.default_answer_format)].format(answer=planted)
        prompt_tokens = sum(len(content.split()) for _, content in request.messages)
        return ModelResponse(text=text, prompt_tokens=prompt_tokens, completion_tokens=len(text.split()), latency_s=self.sim.latency_ms / 1000)

    def cache_scope(self, context: TrialContext) -> str:
        # Its answers are planted per condition and call: two conditions sending the same prompt
        # (HEART's shared round 0) must not share one draw, or results would depend on call order.
        return f"{context.condition}\x1f{context.call_index}"

    async def close(self) -> None:
        return None


# The wordings of `simulate.answer_format` (study.AnswerFormat), around the planted answer, right or
# wrong: the strict extractor misreads `confidence` on number tasks (it takes the last number) and
# `sentence`/`markdown` on exact-match ones; `confidence_only` and `empty` hold no answer at all.
ANSWER_FORMATS = {
    "plain": "{answer}",
    "sentence": "The answer is {answer}.",
    "confidence": "{answer}\nConfidence score: 0.9",
    "markdown": "**Answer:** {answer}",
    "confidence_only": "Confidence score: 0.9",
    "empty": "",
}


# Asked to judge the answer before it (the HEART loop's self-verification), the simulator replies
# with the loop's default verdict words (stimuli/heart.yaml), right with the planted probability:
# it compares the answer under review with the gold.
VERDICTS = {True: "CORRECT", False: "INCORRECT"}


def _judge(request: ModelRequest, gold: str, judges_right: bool) -> str:
    reviewed = next((content for role, content in reversed(request.messages) if role == "assistant"), "")
    is_gold = reviewed.strip() == gold.strip()
    return VERDICTS[is_gold if judges_right else not is_gold]


def _wrong(gold: str, targets: tuple[str, ...], choices: tuple[str, ...], rng: random.Random) -> str:
    """An answer that no scorer accepts for `gold`, of the task's kind where the simulator can tell
    it: another of the item's options, a nearby number; else a non-answer (status no_answer)."""
    if choices:  # the accepted set only where there are options to pick among
        accepted = {t.strip().lower() for t in targets}
        others = [c for c in choices if c.strip().lower() not in accepted]
        if others:
            return rng.choice(others)
    try:
        return str(int(gold) + rng.choice((-3, -2, -1, 1, 2, 3)))
    except ValueError:
        return "I do not know."


PROVIDERS.add("sim", ProviderKind(build=lambda spec, server_base: SimulatedProvider(spec)))
