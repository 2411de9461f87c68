"""The Design page (AppTest) and the draft library behind it: every study in studies/ opens and
saves with its run identity unchanged, edits reach the YAML, bad values and bad files show the
runner's own one-line message, the plan's trial count is the CLI's, and credentials show by name
only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from streamlit.testing.v1 import AppTest

from conftest import REPO, run_cli, run_json, sim_study, write_study
from workbench import api

PAGE = str(REPO / "workbench" / "ui" / "pages" / "design.py")
STUDIES = sorted((REPO / "studies").glob("*.yaml"))
SECRET = "sk-test-123456789"


@pytest.fixture()
def beside_repo(tmp_path: Path) -> Path:
    """A folder where a saved study's relative paths (../tests/data/...) resolve as in studies/."""
    (tmp_path / "tests").symlink_to(REPO / "tests")
    (tmp_path / "studies").mkdir()
    return tmp_path / "studies"


def page(db: Path) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["db"] = str(db)
    return at.run()


def open_study(at: AppTest, path: Path | str) -> AppTest:
    at.text_input(key="design_open").set_value(str(path))
    return button(at, "Open").click().run()


def button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def save(at: AppTest, path: Path, overwrite: bool = False) -> AppTest:
    at.text_input(key="design_save_as").set_value(str(path))
    if overwrite:
        at.checkbox(key="design_overwrite").check()
    return button(at, "Save").click().run()


def cli_error(study: Path, db: Path) -> str:
    """The one line `workbench run` prints on stderr for a bad study, without its `error: `."""
    result = run_cli("run", str(study), "--db", str(db))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


def element_texts(at: AppTest) -> list[str]:
    """Every element's protobuf, serialised: what the browser would receive (texts, tables, widgets)."""
    found: list[str] = []
    stack: list[Any] = [at._tree]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if proto is not None:
            found.append(proto.SerializeToString().decode("utf-8", "replace"))
        stack.extend(getattr(node, "children", {}).values())
    return found


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: p.name)
def test_library_round_trip_keeps_run_identity(study: Path, beside_repo: Path) -> None:
    target = beside_repo / study.name
    saved = api.save_study(api.open_draft(study), target)
    assert saved.written and target.is_file()
    assert api.load_study(target).spec_hash() == api.load_study(study).spec_hash() == saved.spec_hash


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: p.name)
def test_form_round_trip_keeps_run_identity(study: Path, beside_repo: Path, tmp_path: Path) -> None:
    at = open_study(page(tmp_path / "log.duckdb"), study)
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Valid"]
    target = beside_repo / study.name
    at = save(at, target)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert api.load_study(target).spec_hash() == api.load_study(study).spec_hash()
    assert at.session_state["study_path"] == str(target)


def test_new_study_is_valid_and_saves(tmp_path: Path) -> None:
    at = page(tmp_path / "log.duckdb")
    assert not at.exception and [s.value for s in at.success] == ["Valid"]
    at = save(at, tmp_path / "new.yaml")
    assert api.load_study(tmp_path / "new.yaml").spec.name == "new-study"


def test_editing_fields_changes_the_yaml(tmp_path: Path) -> None:
    at = open_study(page(tmp_path / "log.duckdb"), REPO / "studies" / "quickstart.yaml")
    at.text_input(key="design.1.name").set_value("edited-name")
    at.number_input(key="design.1.repeats").set_value(3)
    at.number_input(key="design.1.models.0.temperature").set_value(0.7)
    at.text_input(key="design.1.conditions.1.stimuli").set_value("[{id: SAC/warmth, level: 4}]")
    at.selectbox(key="design.1.errors").set_value("exclude")
    at = at.run()
    assert not at.exception and [s.value for s in at.success] == ["Valid"]
    shown = yaml.safe_load(at.code[0].value)
    assert shown["name"] == "edited-name" and shown["repeats"] == 3 and shown["errors"] == "exclude"
    assert shown["models"][0]["params"] == {"temperature": 0.7, "max_tokens": 32}
    assert shown["conditions"][1]["stimuli"] == [{"id": "SAC/warmth", "level": 4}]
    assert list(shown)[: len(shown) - 1] == list(yaml.safe_load((REPO / "studies" / "quickstart.yaml").read_text()))  # the study's key order, errors added last
    at = save(at, tmp_path / "edited.yaml")
    assert api.load_study(tmp_path / "edited.yaml").spec.repeats == 3


def test_adding_and_removing_conditions(tmp_path: Path) -> None:
    at = page(tmp_path / "log.duckdb")
    at = button(at, "Add HEART condition").click().run()
    shown = yaml.safe_load(at.code[0].value)
    assert shown["conditions"][-1] == {"name": "heart", "solver": "heart", "solver_params": {"rounds": 3, "mode": "oracle"}}
    assert [s.value for s in at.success] == ["Valid"]
    at.selectbox(key="design.1.conditions.2.heart.mode").set_value("verifier_free")
    at.selectbox(key="design.1.conditions.2.heart.final").set_value("synthesis")
    at.selectbox(key="design.1.conditions.2.heart.schedule").set_value("random")
    at.text_input(key="design.1.conditions.2.heart.schedule_options").set_value("{emotions: [anger, fear]}")
    at = at.run()
    params = yaml.safe_load(at.code[0].value)["conditions"][-1]["solver_params"]
    assert params == {"rounds": 3, "mode": "verifier_free", "final": "synthesis", "schedule": {"name": "random", "emotions": ["anger", "fear"]}}
    assert [s.value for s in at.success] == ["Valid"], [e.value for e in at.error]
    at = at.button(key="design.1.conditions.0.remove").click().run()
    assert [c["name"] for c in yaml.safe_load(at.code[0].value)["conditions"]] == ["EP02", "heart"]


def test_bad_value_shows_the_runners_message(tmp_path: Path) -> None:
    study = write_study(tmp_path / "bad.yaml", sim_study(concurrency=0))
    at = open_study(page(tmp_path / "log.duckdb"), study)
    assert not at.exception and not at.success
    assert [e.value for e in at.error] == [cli_error(study, tmp_path / "log.duckdb")]


@pytest.mark.parametrize("override", [{"models": "local/default"}, {"tasks": 5}, {"conditions": {"name": "control"}}, {"repeats": "two"}, {"seed": 2**70}], ids=str)
def test_a_value_the_form_cannot_show_is_kept_and_named(override: dict[str, Any], tmp_path: Path) -> None:
    study = write_study(tmp_path / "odd.yaml", sim_study(**override))
    at = open_study(page(tmp_path / "log.duckdb"), study)
    assert not at.exception
    assert [e.value for e in at.error] == [cli_error(study, tmp_path / "log.duckdb")]
    assert {k: yaml.safe_load(at.code[0].value)[k] for k in override} == override


def test_bad_edit_shows_the_runners_message(tmp_path: Path) -> None:
    """An edit in the form is checked as the file it will be saved as: the message `workbench run` prints for that file."""
    good = write_study(tmp_path / "good.yaml", sim_study())
    at = open_study(page(tmp_path / "log.duckdb"), good)
    at.text_input(key="design.1.conditions.1.stimuli").set_value("[EP99]")
    at = at.run()
    data = sim_study()
    data["conditions"][1]["stimuli"] = ["EP99"]
    expected = cli_error(write_study(tmp_path / "good.yaml", data), tmp_path / "log.duckdb")
    assert "EP99" in expected and [e.value for e in at.error] == [expected]
    at = save(at, tmp_path / "other.yaml")  # an invalid study is not saved
    assert not (tmp_path / "other.yaml").exists() and not at.exception


@pytest.mark.parametrize("content", ["name: [unclosed\n", "- just\n- a list\n", "name: x\nmodels: [\x00]\n", None], ids=["yaml", "list", "nul", "missing"])
def test_bad_file_opened_shows_one_line(content: str | None, tmp_path: Path) -> None:
    study = tmp_path / "broken.yaml"
    if content is not None:
        study.write_text(content)
    at = open_study(page(tmp_path / "log.duckdb"), study)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors[0] == cli_error(study, tmp_path / "log.duckdb") and "\n" not in errors[0] and "Traceback" not in errors[0]
    assert [s.value for s in at.success] == ["Valid"]  # the form keeps the study it held


@pytest.mark.slow  # the CLI subprocess imports litellm (~15 s)
def test_plan_shows_the_clis_trial_count(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    study = REPO / "studies" / "sac_induced.yaml"
    planned = run_json("plan", str(study), "--db", str(db))
    at = open_study(page(db), study)
    lines = [t.value for t in at.text if t.value.startswith("trials ")]
    assert lines == [api.plan(study, db).summary()]
    assert lines[0].startswith(f"trials {planned['trials']} (0 done), model calls at most {planned['calls_max']} ")


@pytest.mark.parametrize("db", ["", "x" * 300, "a\x00b"], ids=["empty", "long", "nul"])
def test_plan_of_a_bad_log_path_shows_one_line(db: str, tmp_path: Path) -> None:
    at = page(tmp_path / "log.duckdb")
    at.sidebar.text_input[0].set_value(db)
    at = at.run()
    assert not at.exception, at.exception
    errors = [e.value.replace("\\", "") for e in at.error]  # the line as shown: common.md_text escapes it for markdown
    assert (errors == [] and db == "") or (len(errors) == 1 and errors[0].startswith("--db: the log path "))


def test_credentials_show_names_never_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    at = page(tmp_path / "log.duckdb")
    at.text_input(key="design.0.models.0.typed").set_value("openai/gpt-4o-mini")
    at = at.run()  # the browser reruns when the field loses focus, before the next click
    at = button(at, "Add model").click().run()
    at.text_input(key="design.1.models.1.typed").set_value("anthropic/claude-3-5-haiku-latest")
    at = at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table.to_dict("records") == [
        {"model": "openai/gpt-4o-mini", "variable": "OPENAI_API_KEY", "status": "set"},
        {"model": "anthropic/claude-3-5-haiku-latest", "variable": "ANTHROPIC_API_KEY", "status": "not set"},
    ]
    texts = element_texts(at)
    assert any("OPENAI_API_KEY" in t for t in texts)
    assert not [t for t in texts if SECRET in t]


def test_save_refuses_to_overwrite_a_different_file(tmp_path: Path) -> None:
    target = tmp_path / "taken.yaml"
    target.write_text("something else\n")
    at = save(page(tmp_path / "log.duckdb"), target)
    assert [e.value for e in at.error] == [f"{target}: a different file exists at this path: tick Overwrite to replace it, or choose another path"]
    assert target.read_text() == "something else\n"
    at = save(at, target, overwrite=True)
    assert not at.error and api.load_study(target).spec.name == "new-study"
    assert at.session_state["study_path"] == str(target)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".taken")]  # no temporary file left


def test_study_text_goes_through_the_file_caps(tmp_path: Path) -> None:
    label = str(tmp_path / "big.yaml")
    with pytest.raises(api.UserError) as caught:
        api.check_study_text("name: x\n" + "#" * (1 << 20), label)
    assert str(caught.value) == f"{label}: the file is larger than 1,048,576 bytes, the most this kind of file may have"
    with pytest.raises(api.UserError, match="not UTF-8 text"):
        api.check_study_text("name: \ud800\n", label)
    text = (REPO / "studies" / "quickstart.yaml").read_text()
    assert api.check_study_text(text, "studies/quickstart.yaml").spec_hash() == api.load_study("studies/quickstart.yaml").spec_hash()


def test_a_schedule_keeps_its_written_form_until_edited() -> None:
    written = {"name": "alternating"}
    name, options = api.schedule_parts(written)
    assert api.schedule_value(name, options, written) is written
    assert api.schedule_value("random", {"emotions": ["anger"]}, written) == {"name": "random", "emotions": ["anger"]}
    assert api.schedule_value("static", None, written) == "static"


def test_a_field_typed_as_bad_yaml_names_the_study_and_field(tmp_path: Path) -> None:
    with pytest.raises(api.UserError) as caught:
        api.parse_field("[EP02", str(tmp_path / "s.yaml"), "conditions[1].stimuli")
    assert str(caught.value).startswith(f"{tmp_path / 's.yaml'}: conditions[1].stimuli (line 1): not valid YAML: ")


def test_credential_status_of_local_and_simulated_models_is_empty() -> None:
    assert api.credential_status(["local/default", "sim/x", "local/qwen-1.5b"]) == []


def test_credential_status_leaves_the_environment_to_other_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """While litellm is asked with the environment hidden, only the asking thread sees it empty."""
    import threading

    from workbench.providers import environment
    from workbench.providers.litellm_provider import _litellm

    utils = _litellm().utils
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    environment._variables_of.cache_clear()
    asker: list[bool] = []
    other: list[bool] = []
    real = utils.validate_environment

    def spied(**kwargs: Any) -> Any:
        asker.append("OPENAI_API_KEY" in utils.os.environ)
        thread = threading.Thread(target=lambda: other.append("OPENAI_API_KEY" in utils.os.environ))
        thread.start()
        thread.join()
        return real(**kwargs)

    monkeypatch.setattr(utils, "validate_environment", spied)
    assert [(v.name, v.set) for v in api.credential_status(["openai/gpt-4o-mini"])] == [("OPENAI_API_KEY", True)]
    assert asker == [False] and other == [True]
    assert utils.os is environment.os  # the real module is back


# -- random edits never raise out of the page -------------------------------------------------------
def _edit(at: AppTest, data: hs.DataObject) -> None:
    usable = {k: [w for w in getattr(at, k) if not w.disabled] for k in ("text_input", "number_input", "selectbox", "checkbox", "text_area", "button")}  # a user cannot edit a disabled one
    kind = data.draw(hs.sampled_from([k for k, found in usable.items() if found]))
    widget = data.draw(hs.sampled_from(usable[kind]))
    if kind in ("text_input", "text_area"):
        widget.set_value(data.draw(hs.one_of(hs.text(max_size=30), hs.sampled_from(["[EP02]", "{a: [", "all", "- x", "[{id: SAC/warmth, level: 9}]"]))))
    elif kind == "number_input":
        whole = widget.proto.data_type == widget.proto.INT
        widget.set_value(data.draw(hs.integers(-(10**6), 10**6) if whole else hs.floats(-5, 5, allow_nan=False)))
    elif kind == "selectbox":
        widget.set_value(data.draw(hs.sampled_from(list(widget.options)))) if widget.options else None
    elif kind == "checkbox":
        widget.set_value(data.draw(hs.booleans()))
    elif widget.label != "Save":  # saving writes where the edit says: not into the checkout
        widget.click()


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=hs.data())
def test_random_edits_never_raise(data: hs.DataObject, tmp_path: Path) -> None:
    at = page(tmp_path / "log.duckdb")
    for _ in range(3):
        _edit(at, data)
        at = at.run()
        assert not at.exception, at.exception
