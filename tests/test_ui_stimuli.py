"""The stimulus browser (workbench/ui/stimulus_browser.py) and the library calls behind it
(api.stimulus_catalogue, api.preview_condition): every family browsable, widgets by parameter
kind, the preview is what the runner sends (checked against the messages a real run logs), the
returned reference loads in a study, and stimulus texts are shown as text, never markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
import yaml
from streamlit.testing.v1 import AppTest

from conftest import sim_study, write_study
from workbench import api
from workbench.core.messages import pairs_json
from workbench.store import query

INJECTION = "<img src=x onerror=alert(1)> ![x](http://127.0.0.1:9/x.png)"


def _browser_app(task: str | None, study_path: str | None) -> None:
    """The widget alone on a page; what it returns lands in session_state["added"]."""
    import streamlit as st

    from workbench.ui.stimulus_browser import stimulus_browser

    added = stimulus_browser(task, key="sb", study_path=study_path)
    if added is not None:
        st.session_state["added"] = added


def browser(task: str | None = "ii/sum", study_path: Path | None = None) -> AppTest:
    at = AppTest.from_function(_browser_app, args=(task, str(study_path) if study_path else None), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def choose(at: AppTest, family: str, stimulus_id: str) -> AppTest:
    at.selectbox(key="sb.family").set_value(family).run()
    at.selectbox(key=f"sb.stimulus.{family}").set_value(stimulus_id).run()
    assert not at.exception, at.exception
    return at


def shown_messages(at: AppTest) -> list[str]:
    """The previewed messages' contents, as shown."""
    return [area.value for area in at.text_area if area.key.startswith("sb.message.")]


def user_family(tmp_path: Path) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({
        "family": "mine", "version": "1", "authored": True,
        "items": [{"id": "MINE/inject", "text": INJECTION}, {"id": "MINE/calm", "text": "Take a deep breath.", "placement": "prefix"}],
    }, sort_keys=False))
    return path


def test_every_family_lists_each_of_its_stimuli() -> None:
    at = browser()
    catalogue = api.stimulus_catalogue()
    assert at.selectbox(key="sb.family").options == list(catalogue.families)
    for family in catalogue.families:
        at.selectbox(key="sb.family").set_value(family).run()
        options = at.selectbox(key=f"sb.stimulus.{family}").options
        assert [o.split(":")[0] for o in options] == [e.id for e in catalogue.of_family(family)]


def test_sac_level_is_a_slider_and_its_mode_a_choice_and_the_preview_is_the_librarys() -> None:
    at = choose(browser("inventory/pers16"), "sac", "SAC/warmth")
    assert at.slider(key="sb.param.SAC/warmth.level").min == 1 and at.slider(key="sb.param.SAC/warmth.level").max == 5
    assert at.selectbox(key="sb.param.SAC/warmth.mode").options == ["code_faithful", "paper_intended"]
    assert at.selectbox(key="sb.placement.SAC/warmth").options[0] == "prefix"
    at.slider(key="sb.param.SAC/warmth.level").set_value(5).run()
    at.selectbox(key="sb.example").set_value(2).run()
    expected = api.preview_condition([{"id": "SAC/warmth", "level": 5}], "inventory/pers16", example=2)
    assert shown_messages(at) == [content for _, content in expected.messages]
    assert "set to intensity level 5" in shown_messages(at)[1]
    assert any(t.value.startswith("Citation: Chittem") for t in at.text)


def test_big_five_intensity_is_a_slider_over_zero_to_one() -> None:
    at = choose(browser(), "big_five_persona", "BIG5/openness")
    slider = at.slider(key="sb.param.BIG5/openness.intensity")
    assert (slider.min, slider.max) == (0.0, 1.0)
    assert any(t.value == "authored by the workbench" for t in at.text)


def test_added_reference_loads_in_a_study(tmp_path: Path) -> None:
    at = choose(browser(), "sac", "SAC/warmth")
    at.slider(key="sb.param.SAC/warmth.level").set_value(4).run()
    at.selectbox(key="sb.placement.SAC/warmth").set_value("system").run()
    at.button(key="sb.add").click().run()
    reference = at.session_state["added"]
    assert reference == {"id": "SAC/warmth", "level": 4, "placement": "system"}
    study = sim_study(models=[{"id": "sim/planted"}], conditions=[{"name": "control"}, {"name": "sac", "stimuli": [reference]}])
    resolved = api.load_study(write_study(tmp_path / "s.yaml", study))
    (applied,) = resolved.conditions["sac"]
    assert (applied.placement, applied.params["level"]) == ("system", 4)


def test_a_heart_phrase_says_why_it_is_no_condition_and_cannot_be_added() -> None:
    at = choose(browser(), "heart", "HEART/anger/1")
    assert any("HEART" in block.value and "program" in block.value for block in at.code)
    assert at.button(key="sb.add").disabled


def test_stimulus_text_with_markup_is_shown_as_text_only(tmp_path: Path) -> None:
    study = write_study(tmp_path / "s.yaml", sim_study(stimulus_files=[str(user_family(tmp_path))]))
    at = choose(browser(study_path=study), "mine", "MINE/inject")
    assert at.text_area(key="sb.text").value == INJECTION  # the stimulus's text, literally
    assert any(INJECTION in shown for shown in shown_messages(at))  # and in the previewed prompt
    assert any(t.value == "authored by its stimulus file's author" for t in at.text)
    rendered_as_markdown = [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success, *at.title, *at.header, *at.subheader]
    assert not [e for e in rendered_as_markdown if "<img" in e.value or "![x]" in e.value]


# -- the preview is what the runner sends --------------------------------------------------------
CONDITIONS: dict[str, list[Any]] = {
    "EP02": ["EP02"],
    "NP01": [{"id": "NP01", "placement": "prefix", "separator": "newline"}],
    "SAC5": [{"id": "SAC/warmth", "level": 5}],
    "BIG5": [{"id": "BIG5/neuroticism", "intensity": 0.8, "situation": "a job interview"}],
    "MINE": ["MINE/calm", "EP02"],
}


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("preview")
    study = sim_study(
        conditions=[{"name": "control"}, *({"name": n, "stimuli": s} for n, s in CONDITIONS.items())],
        tasks=[{"task": "ii/sum", "n": 3}, {"task": "inventory/pers16", "n": 3}],
        stimulus_files=[str(user_family(tmp))],
        seed=7,
    )
    path = write_study(tmp / "s.yaml", study)
    db = tmp / "log.duckdb"
    api.run(path, db)
    return path, db


@pytest.mark.parametrize("condition", list(CONDITIONS))
@pytest.mark.parametrize("task", ["ii/sum", "inventory/pers16"])
def test_preview_is_the_prompt_the_run_logged(logged_run: tuple[Path, Path], condition: str, task: str) -> None:
    study, db = logged_run
    rows = query(db, "SELECT t.item_id, c.messages_json FROM trials t JOIN calls c USING (trial_id) WHERE t.condition = ? AND t.task = ?", [condition, task])
    logged = {row["item_id"]: row["messages_json"] for row in rows}
    previews = [api.preview_condition(CONDITIONS[condition], task, example=k, study_path=study) for k in range(3)]
    assert sorted(p.item_id for p in previews) == sorted(logged)
    for preview in previews:
        assert pairs_json(preview.messages) == logged[preview.item_id]  # byte for byte


@settings(max_examples=25, deadline=None)
@given(
    stimulus=hst.sampled_from(["SAC/warmth", "BIG5/openness", "EP02", "MPX/agents", "HEART/joy/1", "NOPE"]),
    params=hst.dictionaries(
        hst.sampled_from(["level", "intensity", "mode", "placement", "situation", "perspectives", "variant", "separator", "bogus"]),
        hst.one_of(hst.none(), hst.integers(-3, 9), hst.floats(allow_nan=True), hst.text(max_size=8), hst.lists(hst.text(max_size=3), max_size=2)),
        max_size=3,
    ),
    example=hst.integers(-2, 7),
)
def test_any_reference_previews_or_says_what_is_wrong_in_one_line(stimulus: str, params: dict[str, Any], example: int) -> None:
    try:
        preview = api.preview_condition([{"id": stimulus, **params}], "ii/sum", example=example)
    except api.UserError as exc:
        assert "\n" not in str(exc) and "Traceback" not in str(exc)
    else:
        assert preview.calls and all(content for call in preview.calls for _, content in call.messages)
