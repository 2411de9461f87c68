"""Blind ratings (the study's `rating:` block): validation, the log's ratings table (migration 9)
on old logs, the blind seeded queue, saving and refusing ratings, Krippendorff's alpha and the
paired analysis, and two raters in two processes at once."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from scipy import stats as sps

from conftest import run_cli, run_json, sim_study, write_study
from workbench import api
from workbench.stats.ratings import agreement, queue, rating_plan, rating_rows, reliability_matrix
from workbench.stimuli import builtin_library
from workbench.store import SegmentWriter, compact, connect_reader, file_versions, query, segments_dir
from workbench.study.spec import load_study

DATA = Path(__file__).parent / "data"
QUALITY = {"name": "quality", "min": 1, "max": 5, "labels": {1: "bad", 5: "good"}}
CONDITIONS = ("control", "EP02", "NP01")


def _rated_study(**rating: Any) -> dict[str, Any]:
    return sim_study(tasks=[{"task": "ii/sum", "n": 4}], rating={"scales": [QUALITY], **rating})


@pytest.fixture(scope="module")
def single_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("single")
    result = api.run(write_study(root / "study.yaml", _rated_study()), root / "log.duckdb")
    return root / "log.duckdb", result.run_id


@pytest.fixture()
def fresh_log(tmp_path: Path, single_log: tuple[Path, str]) -> tuple[Path, str]:
    """A copy of the single-mode log, to rate in."""
    db, run_id = single_log
    shutil.copytree(db.parent, tmp_path / "log")
    return tmp_path / "log" / db.name, run_id


# -- the study file --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rating", "field", "says"),
    [
        ({"scales": [{"name": "q", "min": 5, "max": 1}]}, "rating.scales[0]", "max must be above min"),
        ({"scales": [{"name": "q", "min": 1, "max": 5, "labels": {7: "x"}}]}, "rating.scales[0]", "outside the scale"),
        ({"scales": [{"name": "q", "min": 1.5, "max": 5}]}, "rating.scales[0].min", "whole number"),
        ({"mode": "triple"}, "rating.mode", "single"),
        ({"conditions": ["nope"]}, "rating.conditions[0]", "allowed: control, EP02, NP01"),
        ({"tasks": ["ii/nope"]}, "rating.tasks[0]", "allowed: ii/sum"),
        ({"mode": "pair", "conditions": ["EP02", "NP01"]}, "rating.conditions", "control"),
        ({"scales": [QUALITY, QUALITY]}, "rating", "unique"),
        ({"colour": 1}, "rating.colour", "allowed"),
    ],
)
def test_a_bad_rating_block_is_one_line_naming_its_field(tmp_path: Path, rating: dict[str, Any], field: str, says: str) -> None:
    path = write_study(tmp_path / "study.yaml", sim_study(tasks=[{"task": "ii/sum", "n": 2}], rating=rating))
    with pytest.raises(api.UserError) as caught:
        load_study(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and f"{field}:" in message and says in message, message


def test_the_rating_block_is_logged_and_leaves_studies_without_one_as_they_were(single_log: tuple[Path, str]) -> None:
    db, run_id = single_log
    logged = json.loads(query(db, "SELECT spec_json FROM runs WHERE run_id = ?", [run_id])[0]["spec_json"])
    assert logged["rating"]["scales"][0] == {"name": "quality", "min": 1, "max": 5, "labels": {"1": "bad", "5": "good"}}
    for path in sorted(Path("studies").glob("*.yaml")):
        study = load_study(path)
        assert "rating" not in json.loads(study.spec.canonical_json()), path
        without = json.dumps(study.spec.model_dump(mode="json", exclude={"rating", "search"}), sort_keys=True, separators=(",", ":"))  # `search` never counts (study.spec)
        assert study.spec.canonical_json() == without, f"{path}: its run identity would change"


# -- the log: migration 9 ----------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["schema_v1", "schema_v8"])
def test_ratings_on_an_older_log_keep_its_rows_and_migrate_it(fixture: str, tmp_path: Path) -> None:
    """schema_v8 was written by the code before the ratings table (tests/data/schema_v8/log_study.yaml)."""
    db = tmp_path / "log.duckdb"
    with gzip.open(DATA / fixture / "log.duckdb.gz", "rb") as source, open(db, "wb") as target:
        shutil.copyfileobj(source, target)
    trials_before = query(db, "SELECT trial_id, score FROM trials ORDER BY 1")
    # The old run's study had no rating block: it says so, and the log stays readable.
    with pytest.raises(api.NoRatingBlock):
        api.rating_queue(db, None, "ann")
    # A rating of an old trial, written as a segment beside the old file, then folded in.
    with SegmentWriter(db) as writer:
        writer.write({"ratings": [{"run_id": "r", "rater": "ann", "unit_id": "u", "trial_id": trials_before[0]["trial_id"], "scale": "q", "value": 4}]}, fold=False)
    assert query(db, "SELECT count(*) AS n FROM ratings")[0]["n"] == 1
    assert compact(db)
    assert file_versions(db)[1] == 9
    raw = duckdb.connect(str(db), read_only=True)
    assert raw.execute("SELECT value FROM ratings").fetchall() == [(4,)]
    raw.close()
    assert query(db, "SELECT trial_id, score FROM trials ORDER BY 1") == trials_before


# -- the queue -------------------------------------------------------------------------------------
def stimulus_texts() -> list[str]:
    library = builtin_library()
    return [library.get(name).text for name in CONDITIONS[1:]]


def _placed(db: Path, run_id: str, rater: str, **plan: Any) -> list[Any]:
    """The rater's queue with the trials behind each unit (never shown)."""
    con = connect_reader(db)
    try:
        return queue(con, replace(rating_plan(con, run_id, str(db)), **plan), rater)
    finally:
        con.close()


def test_the_queue_is_blind(single_log: tuple[Path, str]) -> None:
    db, run_id = single_log
    shown = json.dumps(api.rating_queue(db, run_id, "ann").to_json())
    prompts = "".join(r["messages_json"] for r in query(db, "SELECT messages_json FROM trials"))
    for text in stimulus_texts():
        assert json.dumps(text)[1:-1] in prompts, "the prompts carry the stimuli"
        assert text not in shown and json.dumps(text)[1:-1] not in shown
    for secret in [*CONDITIONS[1:], *(r["trial_id"] for r in query(db, "SELECT trial_id FROM trials"))]:
        assert secret not in shown
    assert {"unit_id", "position", "task_input", "outputs"} == set(json.loads(shown)["pending"][0])


def test_the_order_is_seeded_per_rater(single_log: tuple[Path, str]) -> None:
    db, run_id = single_log
    order = [u.unit_id for u in api.rating_queue(db, run_id, "ann").pending]
    assert len(order) == 12 == len(set(order))
    assert order == [u.unit_id for u in api.rating_queue(db, run_id, "ann").pending], "the same order every time"
    assert order != [u.unit_id for u in api.rating_queue(db, run_id, "bob").pending], "another rater, another order"
    assert order == [p.unit.unit_id for p in _placed(db, run_id, "ann")]
    reseeded = [p.unit.unit_id for p in _placed(db, run_id, "ann", seed=99)]
    assert sorted(reseeded) == sorted(order) and reseeded != order, "another seed, another order of the same outputs"


def test_the_blocks_seed_else_the_studys_draws_the_order(tmp_path: Path) -> None:
    studies = {"block": (_rated_study(seed=7), 7), "study": (sim_study(tasks=[{"task": "ii/sum", "n": 2}], seed=3, rating={"scales": [QUALITY]}), 3)}
    for name, (study, seed) in studies.items():
        db = tmp_path / name / "log.duckdb"
        db.parent.mkdir()
        run_id = api.run(write_study(db.parent / "study.yaml", study), db).run_id
        con = connect_reader(db)
        assert rating_plan(con, run_id, str(db)).seed == seed, name
        con.close()


def test_pair_mode_shows_the_control_beside_each_condition_with_random_sides(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    run_id = api.run(write_study(tmp_path / "study.yaml", _rated_study(mode="pair")), db).run_id
    queue_ = api.rating_queue(db, run_id, "ann")
    assert queue_.total == 8 and all([o.side for o in u.outputs] == ["A", "B"] for u in queue_.pending)
    condition = {r["trial_id"]: r["condition"] for r in query(db, "SELECT trial_id, condition FROM trials")}
    placed = _placed(db, run_id, "ann")
    pairs = [tuple(condition[t] for t, _ in p.trials) for p in placed]
    assert sorted({frozenset(p) for p in pairs}, key=sorted) == [frozenset({"control", "EP02"}), frozenset({"control", "NP01"})]
    assert {p.index("control") for p in pairs} == {0, 1}, "the control is shown on either side"
    first = placed[0]
    api.save_rating(db, run_id, "ann", first.unit.unit_id, {"A": {"quality": 2}, "B": {"quality": 5}})
    rows = {r["side"]: r for r in query(db, "SELECT side, trial_id, value, partner_trial_id FROM ratings")}
    assert (rows["A"]["trial_id"], rows["A"]["value"], rows["A"]["partner_trial_id"]) == (first.trials[0][0], 2, first.trials[1][0])
    assert (rows["B"]["trial_id"], rows["B"]["value"]) == (first.trials[1][0], 5)


# -- saving ----------------------------------------------------------------------------------------
def test_ratings_are_saved_and_read_back(fresh_log: tuple[Path, str]) -> None:
    db, run_id = fresh_log
    queue = api.rating_queue(db, run_id, "ann")
    first, second = queue.pending[:2]
    after = api.save_rating(db, run_id, "ann", first.unit_id, {"": {"quality": 4}})
    assert (after.done, after.total, after.progress_text()) == (1, 12, "1 of 12 rated")
    assert after.next == second, "the rated output leaves the queue; the order stays"
    rows = query(db, "SELECT rater, unit_id, scale, value, position, rated_at FROM ratings")
    assert [(r["rater"], r["unit_id"], r["scale"], r["value"], r["position"]) for r in rows] == [("ann", first.unit_id, "quality", 4, 1)]
    assert rows[0]["rated_at"] is not None
    assert api.rating_queue(db, run_id, "bob").done == 0, "each rater's progress is their own"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=hs.one_of(hs.integers().filter(lambda v: not 1 <= v <= 5), hs.floats(), hs.text(max_size=3), hs.none(), hs.booleans()))
def test_a_value_off_the_scale_is_refused_and_nothing_is_written(single_log: tuple[Path, str], value: Any) -> None:
    db, run_id = single_log
    unit = _placed(db, run_id, "ann")[0]
    with pytest.raises(api.UserError) as caught:
        api.save_rating(db, run_id, "ann", unit.unit.unit_id, {"": {"quality": value}})
    assert "\n" not in str(caught.value) and "values.quality" in str(caught.value) and "1 to 5" in str(caught.value)
    assert not list((segments_dir(db) / "ratings").glob("*.parquet")), "nothing written"


@pytest.mark.parametrize(
    ("rater", "unit", "values", "says"),
    [
        ("ann", None, {"": {}}, "values.quality"),
        ("ann", None, {"": {"quality": 3, "taste": 2}}, "unknown scale 'taste'"),
        ("ann", None, {"A": {"quality": 3}}, "unknown side 'A'"),
        ("ann", "nope", {"": {"quality": 3}}, "no output 'nope'"),
        ("", None, {"": {"quality": 3}}, "rater"),
        ("a\x1bb", None, {"": {"quality": 3}}, "rater"),
    ],
)
def test_bad_ratings_are_refused(fresh_log: tuple[Path, str], rater: str, unit: str | None, values: dict[str, Any], says: str) -> None:
    db, run_id = fresh_log
    unit = unit or api.rating_queue(db, run_id, "ann").next.unit_id
    with pytest.raises(api.UserError) as caught:
        api.save_rating(db, run_id, rater, unit, values)
    assert "\n" not in str(caught.value) and says in str(caught.value)
    assert query(db, "SELECT count(*) AS n FROM ratings")[0]["n"] == 0


def test_a_rating_is_given_once(fresh_log: tuple[Path, str]) -> None:
    db, run_id = fresh_log
    unit = api.rating_queue(db, run_id, "ann").next.unit_id
    api.save_rating(db, run_id, "ann", unit, {"": {"quality": 3}})
    with pytest.raises(api.UserError, match="rated .* already"):
        api.save_rating(db, run_id, "ann", unit, {"": {"quality": 5}})
    assert [r["value"] for r in query(db, "SELECT value FROM ratings")] == [3]


def test_a_run_without_a_rating_block_says_how_to_add_one(tmp_path: Path) -> None:
    result = api.run(write_study(tmp_path / "study.yaml", sim_study(tasks=[{"task": "ii/sum", "n": 2}])), tmp_path / "log.duckdb")
    with pytest.raises(api.NoRatingBlock, match="no `rating:` block"):
        api.rating_queue(tmp_path / "log.duckdb", result.run_id, "ann")
    with pytest.raises(api.UserError, match="no log here"):
        api.rating_queue(tmp_path / "none.duckdb", None, "ann")
    refused = run_cli("ratings", "--db", str(tmp_path / "log.duckdb"))
    assert refused.returncode == 2 and "no `rating:` block" in refused.stderr and "Traceback" not in refused.stderr


# -- analysis --------------------------------------------------------------------------------------
def _ratings(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"rater": r, "unit_id": u, "trial_id": u, "value": v} for r, u, v in rows])


def test_alpha_is_krippendorffs_on_a_hand_checked_case() -> None:
    # Two raters, three outputs: (1, 2), (2, 2), (3, 3). Interval metric: D_o = 2/6 over the six
    # pairable values; D_e = 34/30 (the 15 pairs of 1,2,2,2,3,3 sum to 17, both orders 34);
    # alpha = 1 - (1/3)/(34/30) = 12/17.
    rated = _ratings([("ann", "u1", 1), ("ann", "u2", 2), ("ann", "u3", 3), ("bob", "u1", 2), ("bob", "u2", 2), ("bob", "u3", 3)])
    found = agreement(rated, "quality", "interval")
    assert found.alpha == pytest.approx(12 / 17) and (found.raters, found.units) == (2, 3)
    assert agreement(rated[rated["rater"] == "ann"], "quality", "interval").alpha is None, "one rater: no agreement to measure"


def _rate_all(db: Path, run_id: str, rater: str, value: Any, count: int = 12) -> None:
    """The rater's first `count` units rated `value(trial_id)`, in one batch (as save_rating writes them, faster)."""
    con = connect_reader(db)
    plan = rating_plan(con, run_id, str(db))
    con.close()
    rows = [row for p in _placed(db, run_id, rater)[:count] for row in rating_rows(plan, p, rater, {"": {"quality": value(p.trials[0][0])}})]
    with SegmentWriter(db) as writer:
        writer.write({"ratings": rows}, fold=False)


def test_alpha_equals_the_package_on_the_same_matrix(fresh_log: tuple[Path, str]) -> None:
    db, run_id = fresh_log
    rng = np.random.default_rng(3)
    for rater in ("ann", "bob", "cy"):
        _rate_all(db, run_id, rater, lambda _: int(rng.integers(1, 6)), 8 if rater == "cy" else 12)
    analysis = api.rating_analysis(db, run_id)
    rows = pd.DataFrame(query(db, "SELECT rater, unit_id, trial_id, value FROM ratings"))
    matrix = reliability_matrix(rows)
    assert matrix.shape == (3, 12) and np.isnan(matrix).sum() == 4
    (found,) = analysis.agreement
    assert found.alpha == pytest.approx(krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval"))
    assert (found.raters, found.units, analysis.raters, analysis.ratings) == (3, 12, ("ann", "bob", "cy"), 32)


def test_ratings_are_compared_against_the_control_like_any_score(fresh_log: tuple[Path, str]) -> None:
    """Each trial's score is the mean of its ratings; EP02 against the control is the paired t-test
    of those means over the examples (as `compare` tests continuous scores), Holm-corrected."""
    db, run_id = fresh_log
    trials = {r["trial_id"]: r for r in query(db, "SELECT trial_id, condition, item_id FROM trials")}
    rng = np.random.default_rng(0)
    planned = {"control": 2, "EP02": 4, "NP01": 3}
    for rater in ("ann", "bob"):
        _rate_all(db, run_id, rater, lambda trial: int(np.clip(planned[trials[trial]["condition"]] + rng.integers(-1, 2), 1, 5)))
    analysis = api.rating_analysis(db, run_id)
    table = analysis.tables["quality"]
    ratings = pd.DataFrame(query(db, "SELECT r.value, t.condition, t.item_id FROM ratings r JOIN trials t USING (trial_id)"))
    means = ratings.groupby(["condition", "item_id"])["value"].mean().unstack("condition")
    by = {r.condition: r for r in table.rows}
    assert by["EP02"].delta == pytest.approx((means["EP02"] - means["control"]).mean())
    assert by["EP02"].accuracy == pytest.approx(means["EP02"].mean())
    assert by["EP02"].test == "paired_t" and by["EP02"].examples == 4
    raw = [sps.ttest_rel(means[c], means["control"]).pvalue for c in ("EP02", "NP01")]
    assert [by[c].p_value for c in ("EP02", "NP01")] == pytest.approx(raw)
    assert by["EP02"].p_adjusted == pytest.approx(min(1.0, 2 * min(raw)) if raw[0] <= raw[1] else max(raw))
    assert run_json("ratings", "--db", str(db), "--run", run_id) == json.loads(json.dumps(analysis.to_json()))
    wilcoxon = api.rating_analysis(db, run_id, test="wilcoxon").tables["quality"]
    assert {r.condition: r.test for r in wilcoxon.rows}["EP02"] == "wilcoxon"
    json.dumps(analysis.to_json(), allow_nan=False)


# -- two raters at once ----------------------------------------------------------------------------
RATER = textwrap.dedent(
    """
    import sys
    from workbench import api
    db, run_id, rater = sys.argv[1:]
    for unit in api.rating_queue(db, run_id, rater).pending[:6]:
        api.save_rating(db, run_id, rater, unit.unit_id, {"": {"quality": 3}})
    """
)
COMPACTOR = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from workbench.store import compact
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        compact(Path(sys.argv[1]))
        time.sleep(0.05)
    """
)


def test_two_raters_in_two_processes_lose_nothing(fresh_log: tuple[Path, str]) -> None:
    """Two raters save at the same time while a third process folds segments into the file (as a
    running run's writer does): every rating is in the log afterwards, once."""
    db, run_id = fresh_log
    raters = [subprocess.Popen([sys.executable, "-c", RATER, str(db), run_id, name]) for name in ("ann", "bob")]
    folding = subprocess.Popen([sys.executable, "-c", COMPACTOR, str(db), "4"])
    assert [p.wait(timeout=120) for p in raters] == [0, 0]
    assert folding.wait(timeout=60) == 0
    counted = query(db, "SELECT rater, count(*) AS n, count(DISTINCT unit_id) AS units FROM ratings GROUP BY rater ORDER BY rater")
    assert [(r["rater"], r["n"], r["units"]) for r in counted] == [("ann", 6, 6), ("bob", 6, 6)]
    compact(db)
    raw = duckdb.connect(str(db), read_only=True)
    assert raw.execute("SELECT count(*) FROM ratings").fetchone()[0] == 12
    raw.close()
