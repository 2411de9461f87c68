"""What the tables do with trials that hold no score: errored trials (no response, a failed call or
scorer) and trials whose response holds no answer of the task's type (`no_answer`).

Each has its own study key, `errors` and `no_answer`, each `wrong` (the default: the trial scores
0 and stays in the denominator) or `exclude` (left out of means and tests). Either way the tables
count both, apart from each other and from wrong answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .extract import ERROR, NO_ANSWER

if TYPE_CHECKING:
    import pandas as pd

POLICIES = ("wrong", "exclude")


@dataclass(frozen=True)
class Unscored:
    """The policy for each status that carries no score."""

    errors: str = "wrong"
    no_answer: str = "wrong"

    def __post_init__(self) -> None:
        for name, value in (("errors", self.errors), ("no_answer", self.no_answer)):
            if value not in POLICIES:
                raise ValueError(f"{name} must be one of {', '.join(POLICIES)}, got {value!r}")

    def by_status(self) -> dict[str, str]:
        return {ERROR: self.errors, NO_ANSWER: self.no_answer}

    def excluded(self, status: pd.Series) -> pd.Series:
        """Which trials the means and tests leave out."""
        dropped = [s for s, policy in self.by_status().items() if policy == "exclude"]
        return status.isin(dropped)

    def sql_value(self, score: str = "score", status: str = "status") -> str:
        """A SQL expression of a trial's value: its score, 0 for an unscored trial counted as wrong,
        NULL (left out of avg) for an excluded one."""
        cases = " ".join(f"WHEN {status} = '{s}' THEN {'0.0' if p == 'wrong' else 'NULL'}" for s, p in self.by_status().items())
        return f"CASE {cases} ELSE {score} END"

    def note(self) -> str:
        said = {"wrong": "count as wrong", "exclude": "are excluded"}
        return f"errored trials {said[self.errors]}, trials with no answer {said[self.no_answer]}"
