"""A search read back: its confirmation, kept where a reader of either finds it, and its history
and parameter importances, read from its Optuna storage.

`record_confirmation` keeps the confirmation's facts twice, the same JSON in both: as the Optuna
study's user attribute `workbench_confirmation` (with the trials, where optuna-dashboard shows
it) and as a `search_confirmed` event in the log (for `workbench export` and the Results page,
which read the log alone). The event belongs to the search, not to a run: its run_id is empty, so
no run's status (its last event) changes. A resumed search confirms again: the latest counts.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.clock import utc_now_us
from ..core.errors import UserError
from ..core.optuna_storage import check_storage, open_storage
from ..core.records import Record
from ..store import SegmentWriter, compact, connect_reader, log_exists
from ..study.search import default_journal

if TYPE_CHECKING:
    import optuna
    import pandas as pd

USER_ATTR = "workbench_confirmation"  # the Optuna study's user attribute
CONFIRMED = "search_confirmed"  # the log's event
# The events a search's runs carry (workbench/search/engine.py): a log holds a search if it has one.
SEARCH_EVENTS = ("search_control", "search_trial", "search_confirm", CONFIRMED)
MIN_COMPLETE = 4  # complete trials before parameter importances mean anything


@dataclass(frozen=True)
class Confirmation(Record):
    """The winner against the control on the test split beside the dev estimate it was chosen on
    (SearchResult.confirmation's fields, the winner and control by name)."""

    search: str
    storage: str
    control: str
    winner: str
    candidates: int
    n_trials: int
    best_trial: int | None
    best_value: float | None
    control_dev: float | None
    dev_delta: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    test: str | None
    n_test: int
    level: float
    note: str | None = None
    confirmed_at: Any = None  # when the log recorded it (None: read from the storage)
    # The `baseline:` block's optimised instruction on the test split (None without one): its
    # condition's name, baseline - control, and winner - baseline (None when the control won).
    baseline: str | None = None
    baseline_delta: float | None = None
    baseline_ci_low: float | None = None
    baseline_ci_high: float | None = None
    baseline_p_value: float | None = None
    winner_vs_baseline_delta: float | None = None
    winner_vs_baseline_p_value: float | None = None

    @classmethod
    def of(cls, detail: dict[str, Any], confirmed_at: Any = None) -> Confirmation:
        names = {f.name for f in fields(cls)} - {"winner", "confirmed_at"} - set(BASELINE_FIELDS)
        return cls(**{k: detail.get(k) for k in names}, winner=detail["winner"]["name"], confirmed_at=confirmed_at, **_baseline_fields(detail.get("baseline")))


# Confirmation's baseline fields and where each is read in a confirmation's `baseline` facts.
BASELINE_FIELDS: dict[str, tuple[str, ...]] = {
    "baseline": ("name",),
    "baseline_delta": ("vs_control", "delta"), "baseline_ci_low": ("vs_control", "ci_low"),
    "baseline_ci_high": ("vs_control", "ci_high"), "baseline_p_value": ("vs_control", "p_value"),
    "winner_vs_baseline_delta": ("winner_vs_baseline", "delta"), "winner_vs_baseline_p_value": ("winner_vs_baseline", "p_value"),
}


def _baseline_fields(baseline: dict[str, Any] | None) -> dict[str, Any]:
    """A baseline that found no instruction (`condition` None) ran nothing on the test split: none."""
    if not baseline or baseline.get("condition") is None:
        return {}
    found: dict[str, Any] = {}
    for name, path in BASELINE_FIELDS.items():
        value: Any = baseline
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        found[name] = value
    return found


# -- writing ---------------------------------------------------------------------------------------
def record_confirmation(study: optuna.Study, db: Path | None, facts: dict[str, Any], control: str) -> dict[str, Any]:
    """Keep a concluded search's facts (engine.conclude's) in its Optuna study and, when it logs
    to `db`, in the log; returns what was kept (JSON: no NaN, no password)."""
    detail = _json_safe({**facts, "control": control, "storage": _kept_storage(str(facts.get("storage", "")))})
    study.set_user_attr(USER_ATTR, detail)
    if db is not None and log_exists(db):  # a search on `simulated` logs nothing: no log to add to
        event = {"event_id": f"search:{detail['search']}:{time.time_ns()}", "run_id": None, "event": CONFIRMED,
                 "event_at": utc_now_us(), "detail_json": json.dumps(detail)}
        with SegmentWriter(db) as segments:
            segments.write({"run_events": [event]})
        compact(db)  # into the file other tools open (the duckdb CLI), as a run's end does
    return detail


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _kept_storage(label: str) -> str:
    """The storage as a log may keep it: a journal by its absolute path, a URL without a password
    (check_storage refuses one: then only its scheme)."""
    if label in ("", "memory"):
        return label
    if "://" not in label:
        return str(Path(label).resolve())
    try:
        return check_storage(label).shown
    except UserError:
        return label.split("://", 1)[0] + "://(not shown: it holds a password)"


# -- reading the log ---------------------------------------------------------------------------------
def search_names(db: Path) -> list[str]:
    """The searches a log holds, in the order they began."""
    if not log_exists(db):
        return []
    rows = _events(db, SEARCH_EVENTS)
    return list(dict.fromkeys(json.loads(detail)["search"] for detail, _ in rows))


def confirmations(db: Path) -> list[Confirmation]:
    """Each search's latest confirmation the log holds, in the order the searches began."""
    if not log_exists(db):
        return []
    latest: dict[str, Confirmation] = {}
    for detail, at in _events(db, (CONFIRMED,)):
        found = Confirmation.of(json.loads(detail), at)
        latest[found.search] = found
    order = search_names(db)
    return sorted(latest.values(), key=lambda c: order.index(c.search))


def _events(db: Path, events: tuple[str, ...]) -> list[tuple[str, Any]]:
    con = connect_reader(db)
    try:
        return con.execute(
            "SELECT detail_json, event_at FROM run_events WHERE event IN (SELECT unnest(?)) ORDER BY event_at, event_id", [list(events)]
        ).fetchall()
    finally:
        con.close()


# -- reading the storage -------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchReport:
    """A search as its storage and its log hold it: every trial (`history`: number, state, value,
    condition, parameters, start, end, seconds, best so far), the parameters' importances
    (PED-ANOVA; empty with `importance_note` saying why), and the confirmation."""

    search: str
    storage: str  # as shown: never a password
    directions: tuple[str, ...]
    history: pd.DataFrame
    importances: dict[str, float]
    importance_note: str | None
    confirmation: Confirmation | None

    @property
    def finished(self) -> int:
        return int(self.history["state"].isin(["COMPLETE", "PRUNED"]).sum()) if len(self.history) else 0

    def to_json(self) -> dict[str, Any]:
        history = self.history.astype(object).where(self.history.notna(), None)
        return {
            "search": self.search, "storage": self.storage, "directions": list(self.directions),
            "history": json.loads(json.dumps(history.to_dict(orient="records"), default=str)),
            "importances": self.importances, "importance_note": self.importance_note,
            "confirmation": None if self.confirmation is None else json.loads(json.dumps(self.confirmation.to_dict(json_safe=True), default=str)),
        }


def search_storage_of(db: Path, name: str, storage: str | None, recorded: str | None) -> tuple[Any, str]:
    """The Optuna storage of the search `name` and how to show it: `storage` if given, else the
    default journal beside the log, else the storage its confirmation recorded."""
    setting = storage or (str(default_journal(db, name)) if default_journal(db, name).exists() else recorded)
    if not setting or setting == "memory":
        raise UserError(f"the search {name!r} keeps no storage beside this log: pass the storage it ran with", file=str(db), field="storage")
    checked = check_storage(setting, field="storage")
    if checked.journal is not None and not (checked.journal if checked.journal.is_absolute() else db.parent / checked.journal).exists():
        raise UserError(f"no journal file at {setting!r}", file=str(db), field="storage")
    opened = open_storage(setting, base_dir=db.parent, field="storage", heartbeat_interval=None)
    return opened.storage, opened.shown


def search_report(db: Path, name: str, storage: str | None = None) -> SearchReport:
    """The search `name` of the log `db`, its trials read from its storage (`storage`: a journal
    path or database URL, when not the one beside the log or recorded there)."""
    import optuna

    found = {c.search: c for c in confirmations(db)}
    known = search_names(db)
    if name not in known:
        raise UserError(f"no search {name!r} in this log (searches: {', '.join(known) or 'none'})", file=str(db), field="search")
    confirmation = found.get(name)
    opened, shown = search_storage_of(db, name, storage, confirmation.storage if confirmation else None)
    try:
        study = optuna.load_study(study_name=name, storage=opened)
    except KeyError:
        raise UserError(f"the storage {shown} holds no study {name!r}", file=str(db), field="storage") from None
    if confirmation is None and USER_ATTR in study.user_attrs:  # concluded where the log did not hear of it
        confirmation = Confirmation.of(study.user_attrs[USER_ATTR])
    importances, note = param_importances(study)
    return SearchReport(name, shown, tuple(d.name.lower() for d in study.directions), history(study), importances, note, confirmation)


def history(study: optuna.Study) -> pd.DataFrame:
    """One row per trial, in order: Optuna's trials_dataframe with each parameter under its own
    name, the candidate's condition, seconds, and the best value so far (one objective). A search
    of several objectives has a column per objective under its name (`score`, `tokens`), `value`
    the score, and `pareto`: whether the trial is on the front."""
    import optuna
    import pandas as pd

    frame = study.trials_dataframe(attrs=("number", "state", "value", "params", "datetime_start", "datetime_complete", "duration"))
    if frame.empty:
        return pd.DataFrame(columns=["trial", "state", "value", "condition", "started", "ended", "seconds", "best_so_far"])
    trials = study.get_trials(deepcopy=False)
    frame = frame.rename(columns={"number": "trial", "datetime_start": "started", "datetime_complete": "ended"})
    frame = frame.rename(columns=lambda c: c.removeprefix("params_") if c.startswith("params_") else c)
    frame.insert(3, "condition", [t.user_attrs.get("condition", {}).get("name") for t in trials])
    frame["seconds"] = frame.pop("duration").dt.total_seconds()
    if len(study.directions) > 1:
        names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
        frame = frame.rename(columns={f"values_{key}": name for i, name in enumerate(names) for key in (name, i)})
        if "score" in frame:
            frame.insert(2, "value", frame["score"])
        front = {t.number for t in study.best_trials}
        frame["pareto"] = frame["trial"].isin(front)
    if len(study.directions) == 1 and "value" in frame:
        complete = frame["value"].where(frame["state"] == "COMPLETE")
        best = complete.cummax() if study.direction == optuna.study.StudyDirection.MAXIMIZE else complete.cummin()
        frame["best_so_far"] = best.ffill()
    return frame


def param_importances(study: optuna.Study) -> tuple[dict[str, float], str | None]:
    """Optuna's PED-ANOVA importances (it needs no scikit-learn, which fANOVA does) of the
    parameters that vary among the complete trials; none, with the reason, when too few trials
    are complete or no parameter varies."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_COMPLETE:
        return {}, f"{len(complete)} complete trial(s): importances need at least {MIN_COMPLETE}"
    target = None
    if len(study.directions) > 1:  # the importances for the score, the objective the winner is confirmed on
        names = study.metric_names or []
        if "score" not in names:
            return {}, "several objectives, none named score: importances are computed for one"
        index = names.index("score")
        target = lambda t: -t.values[index]  # noqa: E731 - PED-ANOVA ranks low targets best; the score is maximised
    varying = sorted({k for t in complete for k in t.params if len({repr(u.params.get(k)) for u in complete}) > 1})
    if not varying:
        return {}, "no parameter takes more than one value among the complete trials: nothing to rank"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's notes on few trials per quantile: the note above says what matters
        found = optuna.importance.get_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), params=varying, target=target)
    return {k: float(v) for k, v in found.items()}, None
