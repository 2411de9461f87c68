"""`workbench stimuli list | show | render`, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from reference_data import PUBLISHED


def _json(*args: str):
    result = run_cli("stimuli", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_list_json_has_id_family_text_and_citation_or_authored() -> None:
    rows = _json("list")
    assert len(rows) == 11 + 10 + 60 + 10 + 16 + 5 + 2  # HEART: 6 emotions x 10, and 10 neutral phrases
    for row in rows:
        assert {"id", "family", "text"} <= set(row)
        assert bool(row.get("citation")) != bool(row.get("authored")), row["id"]
    texts = {r["id"]: r["text"] for r in rows}
    for ref in PUBLISHED["emotionprompt"]["items"] + PUBLISHED["negativeprompt"]["items"]:
        assert texts[ref["id"]] == ref["text"]
    assert texts["SAC/warmth"] is None and texts["HEART/fear/3"] == "I'm afraid we can't afford another error here."


def test_list_filters_by_family_and_prints_a_table() -> None:
    rows = _json("list", "--family", "negativeprompt")
    assert [r["id"] for r in rows] == [f"NP{n:02d}" for n in range(1, 11)]
    assert [r["code_pnum"] for r in rows] == [1, 2, 3, 6, 7, 4, 5, 8, 9, 10]
    table = run_cli("stimuli", "list", "--family", "heart")
    assert table.returncode == 0 and "HEART/surprise/5" in table.stdout and "authored" in table.stdout


def test_show_gives_texts_variants_parameters_and_data() -> None:
    ep06 = _json("show", "EP06")
    assert ep06["variants"]["compound"] == " ".join(PUBLISHED["emotionprompt"]["items"][i]["text"] for i in range(3))
    assert ep06["citation"].startswith("Li, C.")
    sac = _json("show", "SAC/dutifulness")
    assert sac["required_params"] == ["level"] and sac["params"]["mode"]["enum"] == ["code_faithful", "paper_intended"]
    assert sac["data"]["factor"] == "G"
    plain = run_cli("stimuli", "show", "NP04")
    assert plain.returncode == 0 and "code_pnum: 6" in plain.stdout and "Perhaps this task is just beyond your skill set." in plain.stdout


def test_show_gives_the_family_source_beside_its_notes() -> None:
    """The family-level `source` block of stimuli/sac.yaml (commit, files, verbatim status) is shown, not dropped."""
    source = _json("show", "SAC/warmth")["family_source"]
    assert "15fb883951562df25889f78de06717f8f1ea0e58" in source["code"] and source["status"].startswith("All strings in this block are verbatim")
    plain = run_cli("stimuli", "show", "SAC/warmth")
    assert plain.returncode == 0 and "family_source:" in plain.stdout and "15fb883951562df25889f78de06717f8f1ea0e58" in plain.stdout
    assert _json("show", "EP02")["family_source"] == {}


def test_render_prints_the_exact_messages() -> None:
    result = run_cli("stimuli", "render", "NP01", "--prompt", "Sum 2 and 3.")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "[system]\nYou are a helpful assistant.\n\n"
        "[user]\nSum 2 and 3.You've never been particularly good at this, have you?\n\n"
    )
    as_json = _json("render", "EP02", "--prompt", "Sum 2 and 3.", "--placement", "prefix")
    assert as_json["calls"] == [{"purpose": "answer", "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "This is very important to my career. Sum 2 and 3."},
    ]}]
    assert as_json["stimulus"]["placement"] == "prefix" and as_json["stimulus"]["separator"] == "space"


@pytest.mark.parametrize(
    ("args", "last"),
    [
        (["EP02", "--placement", "system"], {"role": "user", "content": "Q?"}),
        (["EP02", "--placement", "few_shot_header"], {"role": "user", "content": "This is very important to my career.\nQ?"}),
        (["EP03", "--variant", "promptbench", "--separator", "newline"], {"role": "user", "content": "Q?\nYou’d better be sure."}),
        (["HEART/happiness/4", "--answer", "7"], {"role": "user", "content": "Your previous answer is incorrect. Nice progress! I'm confident you can nail it. Please try again."}),
        (["BIG5/agreeableness", "--param", "intensity=0.1"], {"role": "user", "content": "Q?"}),
    ],
)
def test_render_each_placement(args: list[str], last: dict[str, str]) -> None:
    result = _json("render", *args, "--prompt", "Q?")
    messages = result["calls"][0]["messages"]
    assert messages[-1] == last
    if "system" in args or "BIG5/agreeableness" in args:
        assert messages[0]["content"] == "You are a helpful assistant.\n" + result["stimulus"]["text"]


def test_render_a_multi_agent_stimulus_shows_every_call() -> None:
    result = _json("render", "MPX/agents", "--prompt", "Q?", "--param", "perspectives=[indic, western]")
    assert [c["purpose"] for c in result["calls"]] == ["agent:indic", "agent:western", "synthesis"]
    assert "[Indic traditions]\n<answer of the indic agent>" in result["calls"][-1]["messages"][-1]["content"]


def test_render_sac_in_both_modes() -> None:
    faithful = _json("render", "SAC/anxiety", "--prompt", "Q?", "--param", "level=1", "--param", "mode=code_faithful")
    intended = _json("render", "SAC/anxiety", "--prompt", "Q?", "--param", "level=1")
    assert "    1: N/A, \n" in faithful["stimulus"]["text"]
    assert "    1: calm in most situations, generally relaxed, slightly anxious at times, \n" in intended["stimulus"]["text"]
    assert intended["calls"][0]["messages"][1]["content"] == intended["stimulus"]["text"] + "\nQ?"


BAD = {
    "unknown id": (["render", "EP99", "--prompt", "x"], ["ID", "unknown stimulus 'EP99'", "did you mean EP09"]),
    "unknown placement": (["render", "EP02", "--prompt", "x", "--placement", "middle"], ["--placement", "known: feedback, few_shot_header"]),
    "bad parameter": (["render", "SAC/warmth", "--prompt", "x", "--param", "level=9"], ["--param level", "less than or equal to 5"]),
    "parameter not KEY=VALUE": (["render", "SAC/warmth", "--prompt", "x", "--param", "9"], ["--param", "KEY=VALUE"]),
    "unknown variant": (["render", "EP02", "--prompt", "x", "--variant", "v2"], ["--variant", "allowed: paper, promptbench"]),
    "missing prompt": (["render", "EP02"], ["--prompt"]),
    "unknown family": (["list", "--family", "emotion"], ["--family", "families: big_five_persona, emotionprompt"]),
    "show unknown id": (["show", "SAC/warm"], ["ID", "SAC/warmth"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_clear_line(case: str) -> None:
    args, needles = BAD[case]
    result = run_cli("stimuli", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in result.stderr, message
    for needle in needles:
        assert needle in message, message


def test_a_missing_user_file_is_named(tmp_path: Path) -> None:
    result = run_cli("stimuli", "list", "--file", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "nope.yaml" in result.stderr and "cannot read" in result.stderr
