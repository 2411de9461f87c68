"""The `multi_agent` solver of the Multiplexity family (workbench/stimuli/multiplexity.py): one call
per perspective (purpose `agent:<id>`) and one synthesis call (purpose `synthesis`) through the
runner's `generate`, so every call is cached and logged under the one trial."""

from __future__ import annotations

from ..core.calls import Generate
from ..stimuli import AppliedStimulus
from ..stimuli.multiplexity import AGENT, PLACEMENT, agent_messages, agents, synthesis_messages
from .base import SOLVER_SETUPS, SOLVERS, Solution, SolverSetup, Trial


@SOLVERS.register("multi_agent")
async def multi_agent(trial: Trial, generate: Generate) -> Solution:
    """One call per perspective, then the synthesis; any failed call fails the trial (no silent gaps)."""
    (stimulus,) = [s for s in trial.stimuli if s.placement == PLACEMENT]
    answers: dict[str, str] = {}
    for agent in agents(stimulus):
        result = await generate(agent_messages(trial.messages, stimulus, agent), purpose=AGENT + agent)
        if result.text is None:
            return Solution(text=None, error=f"agent {agent}: {result.error}", details={"program": "multi_agent", "failed_agent": agent})
        answers[agent] = result.text
    final = await generate(synthesis_messages(trial.messages, stimulus, answers), purpose="synthesis")
    return Solution(text=final.text, error=final.error, details={"program": "multi_agent", "agents": list(answers)})


def _max_calls(plan: object, stimuli: tuple[AppliedStimulus, ...]) -> int:
    """One call per perspective agent, then the synthesis."""
    return sum(len(agents(s)) for s in stimuli if s.placement == PLACEMENT) + 1


SOLVER_SETUPS.add("multi_agent", SolverSetup(max_calls=_max_calls))

