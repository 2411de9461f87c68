"""HEART (Pinto et al. 2025): iterative self-correction with emotionally charged feedback, with an
oracle verifier (S1) and without one (S2), and the baselines that make it interpretable.

- plan.py        the condition's configuration, checked at load and frozen into the plan trials carry
- bank.py        the phrases a condition carries, and the seeded draw of one
- schedules.py   which emotion each round carries (registry: static, alternating, random, sequence)
- feedback.py    what fills the phrase slot (registry: emotional, neutral, self_refine)
- strategies.py  judging each round and the final answer (registry: oracle, last, majority,
                 self_verify, synthesis)
- loop.py        the `heart` solver

Per-round accuracy and token cost over the log: workbench/rounds.py.
"""

from __future__ import annotations

from .feedback import FEEDBACK, FeedbackKind, Turn
from .loop import SOLVER, heart_loop
from .plan import HeartConfig, HeartPlan
from .schedules import SCHEDULES, Pick, Schedule, parse_schedule
from .strategies import STRATEGIES, Strategy, read_verdict

__all__ = [
    "FEEDBACK", "FeedbackKind", "HeartConfig", "HeartPlan", "Pick", "SCHEDULES", "SOLVER", "STRATEGIES", "Schedule",
    "Strategy", "Turn", "heart_loop", "parse_schedule", "read_verdict",
]
