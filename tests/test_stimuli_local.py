"""The stimulus families on the embedded model: the ready study `studies/stimulus_families.yaml`
(EmotionPrompt, NegativePrompt, SAC, contextual and multi-agent multiplexity), run small through
the CLI, and its log rows checked: exact messages, stimulus ids and versions, and every call of
the multi-agent program under its one trial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_json, write_study
from reference_data import PUBLISHED, sac_code_prompt
from workbench.store import connect_reader

pytestmark = pytest.mark.local_model

SYSTEM = "You are a helpful assistant."


def _user(instruction: str, item: str) -> str:
    """The ii template with no demos, as the NegativePrompt code renders it (three newlines before Input)."""
    return f"Instruction: {instruction}\n\n\nInput: {item}\nAnswer: "


def test_stimulus_families_study_runs_on_the_embedded_model_and_is_logged(tmp_path: Path, local_server) -> None:
    study = yaml.safe_load((REPO / "studies" / "stimulus_families.yaml").read_text())
    study["tasks"][0]["n"] = 2
    study["models"][0]["params"]["max_tokens"] = 12
    db = tmp_path / "log.duckdb"
    result = run_json("run", str(write_study(tmp_path / "s.yaml", study)), "--db", str(db))
    agents = ["islamic", "confucian", "western"]
    assert result["trials_planned"] == result["trials_done"] == 12 and result["errors"] == 0
    assert result["model_calls"] == 10 + 2 * (len(agents) + 1)
    con = connect_reader(db)
    trials = con.execute(
        "SELECT trial_id, condition, item_input, stimuli_json, messages_json, response_text, n_calls FROM trials WHERE run_id = ?",
        [result["run_id"]],
    ).fetchall()
    assert len(trials) == 12
    task = "Sum the two given numbers."
    sac = PUBLISHED["sac"]["traits"][0]
    assert sac["trait"] == "WARMTH"
    for trial_id, condition, item, stimuli_json, messages_json, response, n_calls in trials:
        stimuli, messages = json.loads(stimuli_json), json.loads(messages_json)
        calls = con.execute(
            "SELECT purpose, messages_json, response_text FROM calls WHERE trial_id = ? ORDER BY call_index", [trial_id]
        ).fetchall()
        assert n_calls == len(calls)
        expected_user = {
            "control": _user(task, item),
            "EP02": _user(f"{task} This is very important to my career.", item),
            "NP01": _user(f"{task}You've never been particularly good at this, have you?", item),
            "SAC-warmth-5": _user(sac_code_prompt(sac, level=5, mode="paper_intended").split("\n    \n    Task:")[0] + "\n" + task, item),
            "MPX-contextual": _user(task, item),
            "MPX-agents": _user(task, item),
        }[condition]
        assert messages[-1] == {"role": "user", "content": expected_user}
        if condition == "MPX-contextual":
            assert messages[0]["content"].startswith(SYSTEM + "\nAnswer in the spirit of multiplexity.")
        else:
            assert messages[0] == {"role": "system", "content": SYSTEM}
        ids = {"control": [], "EP02": ["EP02"], "NP01": ["NP01"], "SAC-warmth-5": ["SAC/warmth"], "MPX-contextual": ["MPX/contextual"], "MPX-agents": ["MPX/agents"]}[condition]
        assert [s["id"] for s in stimuli] == ids and all(s["version"] == "1" for s in stimuli)
        if condition == "SAC-warmth-5":
            assert stimuli[0]["params"] == {"level": 5, "mode": "paper_intended", "assessed_trait": "WARMTH"}
            assert "1: mildly warm, occasionally empathetic, reservedly caring, \n" in stimuli[0]["text"]
        if condition != "MPX-agents":
            assert [c[0] for c in calls] == ["answer"] and json.loads(calls[0][1]) == messages
            continue
        # the multi-agent program: one call per perspective, then the synthesis, all under this trial
        assert [c[0] for c in calls] == [f"agent:{a}" for a in agents] + ["synthesis"]
        assert stimuli[0]["params"] == {"perspectives": agents}
        for (purpose, call_messages, _), agent in zip(calls, agents):
            sent = json.loads(call_messages)
            assert sent[0]["content"] == SYSTEM + "\n" + stimuli[0]["parts"][f"agent:{agent}"]
            assert sent[1:] == messages[1:]
        synthesis = json.loads(calls[-1][1])
        assert synthesis[-1]["content"].startswith(f"Task:\n{expected_user}\n\nThe panel's 3 answers:")
        for _, _, answer in calls[:-1]:
            assert f"\n{answer}" in synthesis[-1]["content"]
        assert response == calls[-1][2]
