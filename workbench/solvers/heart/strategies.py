"""How a HEART loop judges each round and settles on its final answer. A registry: the oracle
(the paper's S1, the only one that reads gold labels, through the runner's verifier) and the
verifier-free strategies a study names with `final`:

- `last`: the last round's answer;
- `majority`: the most frequent parsed answer across rounds (ties go to the latest round);
- `self_verify`: after each answer the model judges it; the loop stops when it says correct;
- `synthesis`: the model reads every round's answer and writes the final one (the paper's S2;
  the trial's own model with a workbench-authored prompt, see stimuli/heart.yaml `loop`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...core.messages import Message
from ...core.registry import Registry
from ...core.calls import JUDGE_PURPOSE, Generate
from ..base import RoundRecord
from ...stimuli.feedback_phrases import LoopPrompts, Verdicts
from ...stimuli.placements import synthesis_prompt, task_text

if TYPE_CHECKING:
    from ..base import Trial


@dataclass
class LoopState:
    trial: Trial
    generate: Generate
    prompts: LoopPrompts
    rounds: list[RoundRecord] = field(default_factory=list)


@dataclass(frozen=True)
class Judgement:
    verdict: str  # correct | incorrect | unclear
    source: str  # oracle | self
    stop_reason: str | None = None  # set when the loop stops at this round
    call_index: int | None = None  # the judging call, if the model judged
    error: str | None = None


@dataclass(frozen=True)
class Final:
    text: str | None
    round: int | None  # the round whose answer is final; None when synthesised
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


Judge = Callable[[LoopState, RoundRecord], Awaitable[Judgement]]
Finish = Callable[[LoopState], Awaitable[Final]]


@dataclass(frozen=True)
class Strategy:
    finish: Finish
    judge: Judge | None = None  # None: every round runs
    needs_gold: bool = False
    prompts: tuple[str, ...] = ()  # the loop prompts it uses (the plan logs them)
    description: str = ""
    judge_calls: int = 0  # model calls its judge makes per round
    final_calls: int = 0  # model calls `finish` makes


STRATEGIES: Registry[Strategy] = Registry("final-answer strategy")


async def _last(state: LoopState) -> Final:
    record = state.rounds[-1]
    return Final(record.text, record.round)


async def _oracle(state: LoopState, record: RoundRecord) -> Judgement:
    if state.trial.verify is None:
        raise RuntimeError("oracle mode needs the runner's verifier, and this trial has none")
    verdict = state.trial.verify(record.text or "")
    return Judgement("correct" if verdict.correct else "incorrect", "oracle", "verified_correct" if verdict.correct else None)


async def _majority(state: LoopState) -> Final:
    votes = Counter(r.answer for r in state.rounds if r.answer)
    if not votes:
        return await _last(state)
    top = max(votes.values())
    winner = next(r for r in reversed(state.rounds) if r.answer and votes[r.answer] == top)
    return Final(winner.text, winner.round, {"votes": dict(votes)})


def read_verdict(text: str, verdicts: Verdicts) -> str:
    """The verdict word the reply gives first (matched as a whole word, any case), else unclear."""
    found = [(m.start(), name) for name, word in (("correct", verdicts.correct), ("incorrect", verdicts.incorrect))
             if (m := re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE))]
    return min(found)[1] if found else "unclear"


async def _self_verify(state: LoopState, record: RoundRecord) -> Judgement:
    messages = (*state.trial.messages, Message.text("assistant", record.text or ""), Message.text("user", state.prompts.verify))
    reply = await state.generate(messages, purpose=f"{JUDGE_PURPOSE}:{record.round}")
    if reply.text is None:
        return Judgement("unclear", "self", call_index=reply.call_index, error=reply.error)
    verdict = read_verdict(reply.text, state.prompts.verdicts)
    return Judgement(verdict, "self", "self_verified" if verdict == "correct" else None, reply.call_index)


def _fill(template: str, **slots: str) -> str:
    """Fill {name} slots in one pass, so text inside a slot is never read as a slot."""
    return re.sub(r"\{(\w+)\}", lambda m: slots.get(m.group(1), m.group(0)), template)


async def _synthesis(state: LoopState) -> Final:
    prompts = state.prompts
    answered = [r for r in state.rounds if r.text is not None]
    candidates = "\n\n".join(_fill(prompts.candidate, index=str(i), answer=r.text or "") for i, r in enumerate(answered, start=1))
    user = _fill(prompts.synthesis, task=task_text(state.trial.messages), candidates=candidates, n=str(len(answered)))
    reply = await state.generate(synthesis_prompt(state.trial.messages, prompts.synthesis_system, user), purpose="synthesis")
    return Final(reply.text, None, {"synthesis_call": reply.call_index, "candidates": len(answered)}, reply.error)


STRATEGIES.add("oracle", Strategy(_last, _oracle, needs_gold=True, description="the task's scorer on the gold decides; stops at the first correct answer"))
STRATEGIES.add("last", Strategy(_last, description="the last round's answer"))
STRATEGIES.add("majority", Strategy(_majority, description="the most frequent parsed answer (ties: the latest round)"))
STRATEGIES.add("self_verify", Strategy(_last, _self_verify, prompts=("verify", "verdicts"), description="the model judges each answer; stops when it says correct", judge_calls=1))
STRATEGIES.add("synthesis", Strategy(_synthesis, prompts=("synthesis_system", "synthesis", "candidate"), description="the model writes the final answer from all rounds' answers", final_calls=1))
