"""The Design page: a study's form, checked live with the runner's rules and messages, planned,
and saved as a file `workbench run` accepts unchanged. Widgets only: the draft, its choices, the
check, the plan and the save are `workbench.api` calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from workbench import api
from workbench.ui.common import log_path, page_errors
from workbench.ui.stimulus_browser import stimulus_browser

DRAFT = "design_draft"  # the study being edited: the file's plain data, in its key order
FORM = "design_form"  # bumped when the draft is replaced (opened, item added or removed): widgets start from it
OPEN = "design_open"
OPEN_ERROR = "design_open_error"
SAVE_AS = "design_save_as"
STUDY_PATH = "study_path"  # the Run page's study file


state = st.session_state
problems: list[str] = []  # fields typed as YAML that do not parse, shown instead of the check

st.title("Design")
with page_errors():
    db = log_path()

if DRAFT not in state:
    state[DRAFT] = api.new_draft()
    state[FORM] = 0
    state[SAVE_AS] = state.get(STUDY_PATH) or "studies/new-study.yaml"


def key(*parts: object) -> str:
    return ".".join(["design", str(state[FORM]), *map(str, parts)])


def replace_draft(draft: dict[str, Any]) -> None:
    state[DRAFT] = draft
    state[FORM] += 1


def open_file() -> None:
    path = state[OPEN]
    try:
        replace_draft(api.open_draft(path))
    except api.UserError as exc:
        state[OPEN_ERROR] = str(exc)
        return
    state.pop(OPEN_ERROR, None)
    state[SAVE_AS] = path
    state[STUDY_PATH] = path


def add_item(section: str, item: dict[str, Any]) -> None:
    items = state[DRAFT].get(section)
    replace_draft(api.updated(state[DRAFT], **{section: [*(items if isinstance(items, list) else []), item]}))


def remove_item(section: str, index: int) -> None:
    items = list(state[DRAFT][section])
    del items[index]
    replace_draft(api.updated(state[DRAFT], **{section: items}))


# -- widgets that edit one field: the original value is kept while the widget shows it unchanged --
def text(label: str, value: Any, name: str, area: bool = False) -> Any:
    shown = api.form_text(value)
    now = (st.text_area if area else st.text_input)(label, value=shown, key=key(name))
    return api.edited(value, shown, now)


def number(label: str, value: Any, name: str, whole: bool = True) -> Any:
    shown = api.form_number(value, whole=whole)
    bounds = {"min_value": -api.WHOLE_LIMIT, "max_value": api.WHOLE_LIMIT, "step": 1} if whole else {"step": 0.1, "format": "%g"}
    now = st.number_input(label, value=shown, key=key(name), **bounds)
    return api.edited(value, shown, now)


def choice(label: str, value: Any, choices: list[Any], name: str, unset: str) -> Any:
    options = api.choices_with([None, *choices], value)
    return st.selectbox(label, options, index=options.index(value), key=key(name), format_func=lambda v: unset if v is None else str(v))


def yaml_field(label: str, value: Any, name: str, field: str, area: bool = False) -> Any:
    shown = api.field_text(value)
    now = (st.text_area if area else st.text_input)(label, value=shown, key=key(name))
    if now == shown:
        return value
    try:
        return api.parse_field(now, state[SAVE_AS], field)
    except api.UserError as exc:
        problems.append(str(exc))
        return value


def show_error(message: str) -> None:
    """The one-line message the CLI prints. It may quote user text: escape it with common.md_text once the safety part adds it."""
    st.error(message)


def entries(draft: dict[str, Any], section: str) -> list[Any]:
    found = draft.get(section)
    return list(found) if isinstance(found, list) else []


def remove_button(section: str, index: int) -> None:
    st.button("Remove", key=key(section, index, "remove"), on_click=remove_item, args=(section, index))


# -- open ----------------------------------------------------------------------------------------
left, right = st.columns([4, 1], vertical_alignment="bottom")
left.text_input("Study file", value=state.get(STUDY_PATH, ""), key=OPEN, help="A study file to fill the form from.")
right.button("Open", on_click=open_file)
if OPEN_ERROR in state:
    show_error(state[OPEN_ERROR])
st.button("New study", on_click=replace_draft, args=(api.new_draft(),))

draft: dict[str, Any] = dict(state[DRAFT])

st.subheader("Study")
draft = api.updated(draft, name=text("Name", draft.get("name"), "name"), description=text("Description", draft.get("description"), "description", area=True))

# -- models --------------------------------------------------------------------------------------
st.subheader("Models")
models = entries(draft, "models")
for i, model in enumerate(models):
    if not isinstance(model, dict):
        continue
    cols = st.columns([3, 3, 2, 2, 1.3], vertical_alignment="bottom")
    with cols[0]:
        chosen = choice("Model", model.get("id"), api.model_choices(), f"models.{i}.id", "(choose)")
    typed = cols[1].text_input("Or a litellm model string", key=key("models", i, "typed"), placeholder="e.g. openai/gpt-4o-mini")
    params = model.get("params")
    if isinstance(params, dict | None):
        with cols[2]:
            temperature = number("Temperature", (params or {}).get("temperature"), f"models.{i}.temperature", whole=False)
        with cols[3]:
            max_tokens = number("Max tokens", (params or {}).get("max_tokens"), f"models.{i}.max_tokens")
        edited_params = api.updated(params, temperature=temperature, max_tokens=max_tokens)
        params = edited_params if edited_params or params is not None else None
    with cols[4]:
        remove_button("models", i)
    models[i] = api.updated(model, id=typed.strip() or chosen, params=params)
ids = [m["id"] for m in models if isinstance(m, dict) and isinstance(m.get("id"), str)]
unused = next((m for m in api.model_choices() if m not in ids), api.SIMULATED_MODEL)
st.button("Add model", on_click=add_item, args=("models", {"id": unused, "params": {"temperature": 0.0, "max_tokens": 32}}))
draft = api.with_entries(draft, "models", models)

variables = api.credential_status(ids)
if variables:
    st.dataframe([{"model": v.model, "variable": v.name, "status": "set" if v.set else "not set"} for v in variables], hide_index=True)
else:
    st.text("No model here reads a key from the environment (local and simulated models need none).")

# -- tasks ---------------------------------------------------------------------------------------
st.subheader("Tasks")
tasks = entries(draft, "tasks")
for i, task in enumerate(tasks):
    if not isinstance(task, dict):
        continue
    with st.container(border=True):
        cols = st.columns([3, 1, 1, 1, 1, 1], vertical_alignment="bottom")
        with cols[0]:
            task_id = choice("Task", task.get("task"), api.task_choices(), f"tasks.{i}.task", "(choose)")
        every = cols[1].checkbox("All examples", value=task.get("n") == "all", key=key("tasks", i, "all"))
        with cols[2]:
            n = "all" if every else number("n", None if task.get("n") == "all" else task.get("n"), f"tasks.{i}.n")
        with cols[3]:
            shots = number("Shots", task.get("shots"), f"tasks.{i}.shots")
        with cols[4]:
            seed = number("Seed", task.get("seed"), f"tasks.{i}.seed")
        with cols[5]:
            remove_button("tasks", i)
        tasks[i] = api.updated(task, task=task_id, n=n, shots=shots, seed=seed)
        with st.expander("Examples"):
            try:
                st.dataframe(api.task_examples(tasks[i], draft.get("seed"), state[SAVE_AS]), hide_index=True)
            except api.UserError as exc:
                st.text(str(exc))
st.button("Add task", on_click=add_item, args=("tasks", {"task": "ii/sum", "n": 20}))
draft = api.with_entries(draft, "tasks", tasks)


# -- conditions ----------------------------------------------------------------------------------
def heart_settings(i: int, params: dict[str, Any]) -> dict[str, Any]:
    """A HEART condition's settings (README: HEART): rounds, verifier, final answer, feedback, schedule."""
    c = api.heart_choices()
    at = f"conditions.{i}.heart"
    cols = st.columns(4)
    with cols[0]:
        rounds = number("Rounds (T)", params.get("rounds"), f"{at}.rounds")
    with cols[1]:
        mode = choice("Verifier", params.get("mode"), c["mode"], f"{at}.mode", "(choose)")
    with cols[2]:
        final = choice("Final answer (verifier-free)", params.get("final"), c["final"], f"{at}.final", "(none: oracle)")
    with cols[3]:
        feedback = choice("Feedback", params.get("feedback"), c["feedback"], f"{at}.feedback", "(default: emotional)")
    name, details = api.schedule_parts(params.get("schedule"))
    cols = st.columns(4)
    with cols[0]:
        schedule = choice("Emotion schedule", name, c["schedule"], f"{at}.schedule", "(default: alternating)")
    with cols[1]:
        options = yaml_field("Schedule options", details, f"{at}.schedule_options", f"conditions[{i}].solver_params.schedule")
    with cols[2]:
        history = choice("History", params.get("history"), c["history"], f"{at}.history", "(default: full)")
    with cols[3]:
        phrases = choice("Phrases", params.get("phrases"), c["phrases"], f"{at}.phrases", "(default by verifier)")
    st.text(f"Emotions: {', '.join(c['emotions'])}; schedule options e.g. {{emotion: anger}} (static), {{emotions: [anger, fear]}} (random), {{steps: [sadness, happiness]}} (sequence)")
    return api.updated(
        params, rounds=rounds, mode=mode, final=final, feedback=feedback, schedule=api.schedule_value(schedule, options, params.get("schedule")),
        history=history, phrases=phrases,
    )


st.subheader("Conditions")
conditions = entries(draft, "conditions")
first_task = tasks[0].get("task") if tasks and isinstance(tasks[0], dict) else None
with st.expander("Add a condition from the stimulus library"):
    saved = state[SAVE_AS] if Path(state[SAVE_AS]).is_file() else None  # a study not saved yet has no stimulus files to add
    picked = stimulus_browser(first_task if isinstance(first_task, str) else None, key="design_stimuli", study_path=saved)
if picked:
    conditions.append({"name": api.new_condition_name(draft, str(picked.get("id"))), "stimuli": [picked]})
for i, condition in enumerate(conditions):
    if not isinstance(condition, dict):
        continue
    with st.container(border=True):
        cols = st.columns([2, 4, 2, 1], vertical_alignment="bottom")
        with cols[0]:
            name = text("Condition name", condition.get("name"), f"conditions.{i}.name")
        with cols[1]:
            stimuli = yaml_field("Stimuli (YAML list)", condition.get("stimuli"), f"conditions.{i}.stimuli", f"conditions[{i}].stimuli")
        with cols[2]:
            solver = choice("Solver", condition.get("solver"), api.solver_choices(), f"conditions.{i}.solver", "(the one its stimuli need)")
        with cols[3]:
            remove_button("conditions", i)
        params = condition.get("solver_params")
        if solver == api.HEART_SOLVER and isinstance(params, dict | None):
            params = heart_settings(i, params or {}) or None
        else:
            params = yaml_field("Solver parameters (YAML)", params, f"conditions.{i}.solver_params", f"conditions[{i}].solver_params")
        conditions[i] = api.updated(condition, name=name, stimuli=stimuli, solver=solver, solver_params=params)
add_cols = st.columns(2)
add_cols[0].button("Add condition", on_click=add_item, args=("conditions", {"name": api.new_condition_name(draft, "condition")}))
add_cols[1].button("Add HEART condition", on_click=add_item, args=("conditions", {"name": api.new_condition_name(draft, "heart"), "solver": api.HEART_SOLVER, "solver_params": {"rounds": 3, "mode": "oracle"}}))
draft = api.with_entries(draft, "conditions", conditions)
names = [c["name"] for c in conditions if isinstance(c, dict) and isinstance(c.get("name"), str)]
draft = api.updated(draft, control=choice("Control", draft.get("control"), names, "control", "(default: control, else the first without stimuli)"))
draft = api.updated(draft, sweep=yaml_field("Sweep (YAML)", draft.get("sweep"), "sweep", "sweep", area=True))
draft = api.updated(draft, rating=yaml_field("Rating (YAML: the Rate page's scales, e.g. {scales: [{name: quality, min: 1, max: 5}]})", draft.get("rating"), "rating", "rating", area=True))

# -- the run's settings --------------------------------------------------------------------------
st.subheader("Run settings")
cols = st.columns(5)
with cols[0]:
    repeats = number("Repeats", draft.get("repeats"), "repeats")
with cols[1]:
    study_seed = number("Seed", draft.get("seed"), "seed")
with cols[2]:
    concurrency = number("Concurrency", draft.get("concurrency"), "concurrency")
with cols[3]:
    errors = choice("Errors", draft.get("errors"), api.policy_choices(), "errors", "(default: wrong)")
with cols[4]:
    no_answer = choice("No answer", draft.get("no_answer"), api.policy_choices(), "no_answer", "(default: wrong)")
draft = api.updated(draft, repeats=repeats, seed=study_seed, concurrency=concurrency, errors=errors, no_answer=no_answer)
state[DRAFT] = draft

# -- check, plan, save ---------------------------------------------------------------------------
st.subheader("Check")
resolved = None
if problems:
    show_error(problems[0])
else:
    try:
        resolved = api.check_draft(draft, state[SAVE_AS])
        st.success("Valid")
        for warning in api.study_warnings(resolved):
            st.text(f"warning: {warning}")
    except api.UserError as exc:
        show_error(str(exc))

with st.expander("Plan", expanded=True):
    if resolved is None:
        st.text("The plan shows once the study is valid.")
    else:
        try:
            plan = api.plan(resolved, db)
            st.text(plan.summary())
            st.dataframe([c.to_dict() for c in plan.conditions], hide_index=True)
            if plan.power:
                st.text(f"power at a {plan.effect * 100:+.0f}-point difference (exact McNemar, baseline {plan.baseline:g})")
                st.dataframe([p.to_dict() for p in plan.power], hide_index=True)
        except (api.UserError, api.LogFault) as exc:
            show_error(str(exc))

with st.expander("YAML"):
    st.code(api.render_draft(draft), language="yaml")

cols = st.columns([4, 1, 1], vertical_alignment="bottom")
cols[0].text_input("Save as", key=SAVE_AS, help="The study file to write (relative paths in the study resolve from its folder).")
overwrite = cols[1].checkbox("Overwrite", key="design_overwrite")
if cols[2].button("Save"):
    try:
        saved = api.save_study(draft, state[SAVE_AS], overwrite=overwrite)
        state[STUDY_PATH] = saved.path
        st.success("Saved" if saved.written else "Saved (the file held this study already)")
        st.text(saved.path)
    except api.UserError as exc:
        show_error(str(exc))

