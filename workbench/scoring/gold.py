"""Gold labels behind a seal: who may read a task item's targets, and when.

A solver never sees the gold: the runner hands it the trial with its targets sealed. Where a
condition consumes gold labels (an oracle verifier), the solver gets a verifier callable that
answers "correct or not" and nothing more. Code that legitimately reads the gold does so inside
a named access phase:

- `data`: the task layer building and fingerprinting examples and few-shot demos (before any call);
- `provider`: inside the runner's model call, so a simulated model can plant effects against the
  gold (real adapters never read it; the solver is suspended awaiting the call meanwhile);
- `scoring`: the runner's final scoring, and each call of an oracle verifier.

`SealedTargets` raises `GoldSealedError` on any read outside these phases. The runner seals every
trial it hands a solver; a test can seal an item's targets from the start to prove that nothing
else reads them either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, overload

from .metrics import is_correct

if TYPE_CHECKING:
    from ..core.items import TaskItem
    from .task import ScoredTask

Phase = Literal["data", "provider", "scoring"]
PHASES: tuple[Phase, ...] = ("data", "provider", "scoring")

_phase: ContextVar[Phase | None] = ContextVar("gold_access_phase", default=None)


class GoldSealedError(RuntimeError):
    """The gold answer was read where it must not be (by a solver, or before final scoring)."""


class access:  # noqa: N801 - used as a function: `with access("scoring"):`
    """Let the code inside read sealed gold, as `phase`. Scoped to the current task's context.
    A plain class, not @contextmanager: the runner enters it several times per trial."""

    __slots__ = ("phase", "_token")

    def __init__(self, phase: Phase) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown gold access phase {phase!r} (phases: {', '.join(PHASES)})")
        self.phase = phase

    def __enter__(self) -> None:
        self._token = _phase.set(self.phase)

    def __exit__(self, *_: object) -> None:
        _phase.reset(self._token)


class SealedTargets(Sequence[str]):
    """A task item's targets that can be read only inside an access phase."""

    __slots__ = ("_targets",)

    def __init__(self, targets: Sequence[str]) -> None:
        self._targets = targets

    def _open(self) -> Sequence[str]:
        phase = _phase.get()
        if phase is None:
            raise GoldSealedError("the gold answer is sealed: only the runner's final scoring (or an oracle verifier) may read it")
        self.opened(phase)
        return self._targets

    def opened(self, phase: Phase) -> None:
        """Called on each permitted read (a hook for tests that record who read the gold)."""

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._open()[index]

    def __len__(self) -> int:
        return len(self._open())

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._open()))

    def __repr__(self) -> str:
        return "SealedTargets(<sealed>)"


def seal(targets: Sequence[str]) -> SealedTargets:
    return targets if isinstance(targets, SealedTargets) else SealedTargets(targets)


@dataclass(frozen=True)
class Verdict:
    """What an oracle verifier tells a solver about one answer."""

    correct: bool
    score: float
    answer: str


Verifier = Callable[[str], Verdict]


def oracle(task: ScoredTask, item: TaskItem, extractor: str | None = None) -> Verifier:
    """The task's scorer on the gold answer, as a callable that reveals only the verdict. With an
    extractor it reads each answer as final scoring will (no answer: incorrect, score 0)."""

    def verify(text: str) -> Verdict:
        with access("scoring"):
            if extractor is None:
                answer, score = task.score(text, item)
            else:
                from .extract import score_text

                scored = score_text(task, item, text, extractor)
                answer, score = scored.answer or "", scored.value or 0.0
        return Verdict(correct=is_correct(score), score=score, answer=answer)

    return verify
