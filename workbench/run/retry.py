"""Trials that ended in a transient error (server unreachable, timeout, rate limit, server error)
run again when their run resumes, each at most MAX_ATTEMPTS times in all; their earlier attempts
stay in the log (`trial_attempts`, and `call_attempts`, `round_attempts`, `score_attempts`), and
readers see each trial's latest attempt (`trials`...). Permanent errors stay errors.

Which trials: the run's errored trials whose last call failed with a transient kind of error,
found with one query when the run starts (never per trial)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..providers.base import TRANSIENT_KINDS

# A trial's first run and at most three more, on resumes: a server down for a while is back by
# then, one whose every answer fails (a bad endpoint) gives up after four.
MAX_ATTEMPTS = 4


@dataclass(frozen=True)
class Errored:
    """A logged trial that ended in an error: its latest attempt, and the kind of error its last
    call ended in (None: no call failed; the program or its scoring did)."""

    attempt: int
    kind: str | None

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_KINDS


def errored_trials(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Errored]:
    """The run's errored trials (their latest attempts, as a reader shows `trials` and `calls`)."""
    rows = con.execute(
        "WITH errored AS (SELECT trial_id, attempt FROM trials WHERE run_id = ? AND status = 'error'), "
        "last_call AS (SELECT trial_id, error_kind FROM calls WHERE run_id = ? AND trial_id IN (SELECT trial_id FROM errored) "
        "QUALIFY row_number() OVER (PARTITION BY trial_id ORDER BY call_index DESC) = 1) "
        "SELECT e.trial_id, e.attempt, c.error_kind FROM errored e LEFT JOIN last_call c USING (trial_id)",
        [run_id, run_id],
    ).fetchall()
    return {trial_id: Errored(int(attempt or 1), kind) for trial_id, attempt, kind in rows}


def to_retry(errored: Mapping[str, Errored], max_attempts: int = MAX_ATTEMPTS) -> dict[str, int]:
    """The errored trials a resume runs again (ended in a transient error, attempts left) -> their next attempt."""
    return {trial_id: e.attempt + 1 for trial_id, e in errored.items() if e.transient and e.attempt < max_attempts}


@dataclass
class TransientErrors:
    """A run's trials that ended in a transient error: those a re-run retries, by kind, and those
    that used up their attempts (they stay errors)."""

    max_attempts: int = MAX_ATTEMPTS
    retryable: Counter[str] = field(default_factory=Counter)
    exhausted: int = 0

    def count(self, attempt: int, kind: str | None) -> None:
        """A trial whose `attempt` ended in an error of `kind` (a permanent one counts nowhere)."""
        if kind not in TRANSIENT_KINDS:
            return
        if attempt < self.max_attempts:
            self.retryable[kind] += 1
        else:
            self.exhausted += 1

    @property
    def retryable_total(self) -> int:
        return sum(self.retryable.values())

    def to_json(self) -> dict[str, Any]:
        return {"transient_errors": self.retryable_total, "transient_kinds": dict(self.retryable), "transient_exhausted": self.exhausted}


def transient_errors(errored: Mapping[str, Errored], max_attempts: int = MAX_ATTEMPTS) -> TransientErrors:
    found = TransientErrors(max_attempts)
    for trial in errored.values():
        found.count(trial.attempt, trial.kind)
    return found


def last_error_kind(calls: list[dict[str, Any]]) -> str | None:
    """The kind of error a trial's last call ended in, from its `calls` rows (None: it made none, or it answered)."""
    return calls[-1]["error_kind"] if calls else None


def retry_notes(retried: int, kinds: Mapping[str, int], exhausted: int, max_attempts: int = MAX_ATTEMPTS) -> list[str]:
    """What became of a run's trials that ended in a transient error, and what a re-run does with
    them: the lines the CLI prints (and any other front end shows)."""
    notes = []
    if retried:
        notes.append(f"ran {_trials(retried)} again that had ended in transient errors (the earlier attempts stay in the log)")
    if kinds:
        notes.append(f"{_trials(sum(kinds.values()))} ended in transient errors ({describe(kinds)}); run the same command again to retry them")
    if exhausted:
        notes.append(f"{_trials(exhausted)} still ended in transient errors after {max_attempts} attempts each; they stay errors (--fresh starts a new run)")
    return notes


def _trials(n: int) -> str:
    return f"{n} trial{'' if n == 1 else 's'}"


def describe(kinds: Mapping[str, int]) -> str:
    """E.g. `server unreachable`, or `server unreachable: 7, no answer in time: 2`."""
    ordered = Counter(kinds).most_common()
    if len(ordered) == 1:
        return TRANSIENT_KINDS.get(ordered[0][0], ordered[0][0])
    return ", ".join(f"{TRANSIENT_KINDS.get(kind, kind)}: {n}" for kind, n in ordered)
