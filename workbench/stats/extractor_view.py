"""A run's trials as one answer extractor scored them.

Every table reads `trials`. `use_extractor` turns that view of a reader connection into the
trials with the answer, score and status a named extractor gave them (its `scores` rows), so
the comparison, the per-task scores, the costs and the reports all use the same extractor
without knowing about it. Trials no extractor reads (judge-graded) keep their own score, and a
trial scored at run time by the extractor asked for keeps its row as logged.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import UserError
from ..scoring.scorers import SCORERS

# A trial's own extractor: the one it names, else (a log written before extractors existed) the
# task parser its metric scorer used, which is what `strict` is; NULL for a judge-graded trial.
_OWN = (
    "CASE WHEN t.extractor IS NOT NULL THEN t.extractor "
    "WHEN json_extract_string(t.task_json, '$.scoring') IN (SELECT unnest(?)) THEN 'strict' END"
)


def _extracting_scorers() -> list[str]:
    return [name for name in SCORERS if SCORERS.get(name).extracts]


def own_extractor(con: Any, run_id: str) -> str | None:
    """The extractor(s) the run scored its trials with, as one label ("flexible", or
    "flexible+strict" where task entries chose differently); None when no task used one."""
    named = [r[0] for r in con.execute("SELECT DISTINCT extractor FROM trials WHERE run_id = ?", [run_id]).fetchall()]
    if None in named:  # a trial naming none (judge-graded, or logged before extractors): ask its task (slower: its JSON, per trial)
        named = [r[0] for r in con.execute(
            f"SELECT DISTINCT {_OWN} AS own FROM trials t WHERE t.run_id = ? AND own IS NOT NULL", [_extracting_scorers(), run_id],
        ).fetchall()]
    return "+".join(sorted(n for n in named if n is not None)) or None


def use_extractor(con: Any, run_id: str, extractor: str | None) -> str | None:
    """Make `trials` on this reader connection show `extractor`'s scores (None: leave the run's own);
    returns the label of the extractor the tables now use. UserError (field --extractor) when an
    unknown extractor is named or trials of the run have no `scores` row for it."""
    if extractor is None:
        return own_extractor(con, run_id)
    if con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'trials_as_logged'").fetchone()[0]:
        # this reader shows an extractor already (one reader serves a whole comparison)
        shown = con.execute("SELECT name FROM chosen_extractor").fetchone()[0]
        if shown != extractor:
            raise ValueError(f"this reader shows the {shown} extractor's scores, not {extractor}'s")
        return extractor
    from ..scoring.extract import EXTRACTORS

    if extractor not in EXTRACTORS:
        raise UserError(EXTRACTORS.unknown_message(extractor), field="--extractor")
    missing = con.execute(
        f"SELECT count(*) FROM trials t WHERE t.run_id = ? AND ({_OWN}) IS DISTINCT FROM ? AND ({_OWN}) IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM scores s WHERE s.trial_id = t.trial_id AND s.extractor = ?)",
        [run_id, _extracting_scorers(), extractor, _extracting_scorers(), extractor],
    ).fetchone()[0]
    if missing:
        raise UserError(
            f"{missing} trials of run {run_id} have no scores under the {extractor} extractor: "
            f"run `workbench rescore {run_id} --extractor {extractor}` first",
            field="--extractor",
        )
    con.execute("CREATE OR REPLACE TEMP TABLE chosen_scores AS SELECT * FROM scores WHERE extractor = ?", [extractor])
    con.execute("CREATE OR REPLACE TEMP TABLE chosen_extractor AS SELECT ? AS name", [extractor])
    con.execute("ALTER VIEW trials RENAME TO trials_as_logged")
    chosen = ", ".join(f"CASE WHEN s.trial_id IS NULL THEN t.{c} ELSE s.{c} END AS {c}" for c in ("answer", "score", "status", "extractor"))
    con.execute(f"CREATE VIEW trials AS SELECT t.* REPLACE ({chosen}) FROM trials_as_logged t LEFT JOIN chosen_scores s ON s.trial_id = t.trial_id")
    return extractor
