"""The HEART loop (`solver: heart`): answer, then T rounds of feedback and a new answer.

Round 0 is the trial's prompt (with the condition's other stimuli). Each round t = 1..T sends the
previous answer back with a feedback turn (the template around the phrase the feedback kind and
schedule pick) and asks again; `history: full` keeps the conversation, `last` shows only the task
and the last answer. After each answer the strategy may judge it (the oracle verifier, or the
model itself) and stop the loop; at the end it settles the final answer. Every random pick comes
from one generator seeded by the trial's seed (logged as `schedule_seed`), so a loop that stops
early saw a prefix of the picks a longer one sees.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...core.messages import Message, Messages
from ..base import SOLVER_SETUPS, SOLVERS, RoundRecord, Solution, SolverSetup
from ...core.calls import Generate
from ...stimuli import AppliedStimulus, feedback_phrases
from ...core.seeds import stable_seed
from .feedback import FEEDBACK, Turn
from .plan import HeartPlan, consumes_gold, max_calls, prepare
from .strategies import STRATEGIES, Judgement, LoopState

if TYPE_CHECKING:
    from ..base import Trial

SOLVER = "heart"

# What round t answers after: the whole conversation so far, or the task alone.
HISTORIES = {
    "full": lambda trial, conversation: conversation,
    "last": lambda trial, conversation: trial.messages,
}


def schedule_seed(trial_seed: int) -> int:
    return stable_seed(trial_seed, SOLVER, "schedule") % (2**31 - 1)


def bare_feedback(template_text: str) -> str:
    """The feedback template with no phrase in it (the self-refine baseline)."""
    return " ".join(template_text.replace(feedback_phrases.PLACEHOLDER, "").split())


def feedback_messages(base: Messages, turn: Turn, phrases: dict[str, AppliedStimulus], plan: HeartPlan) -> Messages:
    """`base` (ending with the previous answer) plus the round's feedback turn."""
    if turn.phrase_id is None:
        return (*base, Message.text("user", bare_feedback(plan.template_text)))
    return feedback_phrases.feedback_turn(base, phrases[turn.phrase_id])


@SOLVERS.register(SOLVER)
async def heart_loop(trial: Trial, generate: Generate) -> Solution:
    plan = HeartPlan.model_validate(dict(trial.solver_params))
    kind, strategy = FEEDBACK.get(plan.feedback), STRATEGIES.get(plan.strategy)
    schedule, bank = plan.schedule_model(), plan.phrase_bank()
    phrases = {s.id: s for s in trial.stimuli if s.placement == "feedback"}
    seed = schedule_seed(trial.seed)
    rng, used = random.Random(seed), set()  # phrases used so far in this trial
    state = LoopState(trial, generate, plan.loop_prompts())
    conversation: Messages = trial.messages
    stop_reason, error = "budget", None
    for t in range(plan.rounds + 1):
        turn, sent = Turn(), trial.messages
        if t > 0:
            answered = (*HISTORIES[plan.history](trial, conversation), Message.text("assistant", state.rounds[-1].text or ""))
            turn = kind.turn(t, rng, bank, schedule, used)
            sent = feedback_messages(answered, turn, phrases, plan)
        reply = await generate(sent, purpose=f"round:{t}")
        record = RoundRecord(
            round=t, messages=sent, text=reply.text, call_indices=(reply.call_index,) if reply.call_index is not None else (),
            emotion=turn.emotion, tone=turn.tone, phrase_id=turn.phrase_id, asserts_error=plan.asserts_error.get(turn.phrase_id or ""),
            feedback=sent[-1].content if t > 0 else None, error=reply.error,
        )
        if reply.text is None:
            state.rounds.append(record)
            stop_reason, error = "error", f"round {t}: {reply.error}"
            break
        record = replace(record, answer=trial.task.parse(reply.text, trial.item))
        judgement = await strategy.judge(state, record) if strategy.judge else None
        state.rounds.append(_judged(record, judgement))
        conversation = sent
        if judgement is not None and judgement.error is not None:
            stop_reason, error = "error", f"round {t} judging: {judgement.error}"
            break
        if judgement is not None and judgement.stop_reason:
            stop_reason = judgement.stop_reason
            break
    details: dict[str, Any] = {
        "program": SOLVER,
        "mode": plan.mode,
        "feedback": plan.feedback,
        "final_strategy": plan.strategy,
        "consumes_gold": trial.consumes_gold,
        "rounds_budget": plan.rounds,
        "rounds_used": state.rounds[-1].round,
        "stop_reason": stop_reason,
        "schedule_seed": seed,
        "emotions": [r.emotion for r in state.rounds[1:]],
        "phrase_ids": [r.phrase_id for r in state.rounds[1:]],
    }
    if error is not None:
        return Solution(text=None, error=error, details=details, rounds=tuple(state.rounds))
    final = await strategy.finish(state)
    answer = trial.task.parse(final.text, trial.item) if final.text is not None else None
    details.update(final.details, final_round=final.round, final_answer=answer)
    if final.error is not None:
        details["stop_reason"] = "error"
    return Solution(text=final.text, error=final.error, details=details, rounds=tuple(state.rounds))


def _judged(record: RoundRecord, judgement: Judgement | None) -> RoundRecord:
    if judgement is None:
        return record
    calls = record.call_indices + ((judgement.call_index,) if judgement.call_index is not None else ())
    return replace(record, verdict=judgement.verdict, verdict_source=judgement.source, call_indices=calls, error=judgement.error)


SOLVER_SETUPS.add(SOLVER, SolverSetup(prepare=prepare, consumes_gold=consumes_gold, max_calls=max_calls))
