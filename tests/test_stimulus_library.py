"""The library holds every family with the counts the issue names, cited or labelled authored, and
the published texts exactly as published (compared with tests/reference/published_stimuli.yaml)."""

from __future__ import annotations

import pytest

from reference_data import PUBLISHED, sac_code_prompt
from workbench.stimuli import build_prompt, builtin_library, resolve
from workbench.stimuli import feedback_phrases as heart, sac
from workbench.stimuli.renderers import fields_of
from workbench.stimuli.sac import SacFields
from workbench.tasks import builtin_tasks


@pytest.fixture(scope="module")
def library():
    return builtin_library()


def test_family_counts(library) -> None:
    assert [i.id for i in library.items("emotionprompt")] == [f"EP{n:02d}" for n in range(1, 12)]
    assert [i.id for i in library.items("negativeprompt")] == [f"NP{n:02d}" for n in range(1, 11)]
    by_emotion = {e: heart.phrases(e) for e in ("anger", "disgust", "fear", "happiness", "sadness", "surprise")}
    assert set(heart.emotions()) == set(by_emotion)
    assert all(len(items) >= 5 for items in by_emotion.values())
    assert heart.tones() == {"encouraging": ["happiness", "surprise"], "critical": ["anger", "disgust", "fear", "sadness"]}
    assert len(library.items("sac")) == 16
    letters = {fields_of(i, SacFields).factor for i in library.items("sac")}
    assert letters == {"A", "B", "C", "E", "F", "G", "H", "I", "L", "M", "N", "O", "Q1", "Q2", "Q3", "Q4"}
    assert [f.factor for f in sac.intensity_factors()] == ["Frequency", "Depth", "Threshold", "Effort", "Willingness"]
    assert [i.id for i in library.items("big_five_persona")] == [
        "BIG5/agreeableness", "BIG5/conscientiousness", "BIG5/extraversion", "BIG5/neuroticism", "BIG5/openness",
    ]
    assert {i.id for i in library.items("multiplexity")} == {"MPX/contextual", "MPX/agents"}


def test_every_item_is_cited_or_labelled_authored(library) -> None:
    for item in library.items():
        assert item.version and item.family
        assert item.citation or item.authored, item.id
    published = {"emotionprompt", "negativeprompt", "sac"}
    for item in library.items():
        # what the references mark NOT FOUND is the workbench's own, and says what it is modelled on
        assert item.authored == (item.family not in published), item.id
        if item.authored:
            assert item.inspired_by and "arXiv" in item.inspired_by


def test_emotionprompt_texts_are_the_published_ones_exactly(library) -> None:
    reference = PUBLISHED["emotionprompt"]["items"]
    assert len(reference) == 11
    for ref in reference:
        item = library.get(ref["id"])
        assert item.text == ref["text"], ref["id"]
        assert item.text_for("promptbench") == ref["text_promptbench"], ref["id"]
    assert library.get("EP03").variants["promptbench"] == "You’d better be sure."  # curly apostrophe, as shipped


def test_ep06_is_both_the_shipped_sentence_and_the_compound_of_ep01_to_ep03(library) -> None:
    texts = {r["id"]: r["text"] for r in PUBLISHED["emotionprompt"]["items"]}
    assert library.get("EP06").compound_of == ["EP01", "EP02", "EP03"]
    single = resolve(library, "EP06")
    compound = resolve(library, "EP06", variant="compound")
    assert single.text == texts["EP06"] and single.variant is None
    assert compound.text == f"{texts['EP01']} {texts['EP02']} {texts['EP03']}" and compound.variant == "compound"


def test_negativeprompt_texts_and_the_code_numbering(library) -> None:
    reference = PUBLISHED["negativeprompt"]
    for ref in reference["items"]:
        item = library.get(ref["id"])
        assert item.text == ref["text"] and item.code_pnum == ref["code_pnum"], ref["id"]
    by_pnum = sorted(library.items("negativeprompt"), key=lambda i: i.code_pnum)
    assert [i.text for i in by_pnum] == reference["code_order"]
    # the paper's and the code's numbers differ exactly for NP04-NP07
    differ = [i.id for i in library.items("negativeprompt") if int(i.id[2:]) != i.code_pnum]
    assert differ == ["NP04", "NP05", "NP06", "NP07"]


def test_default_separator_is_each_source_papers(library) -> None:
    from workbench.core.messages import Message
    from workbench.stimuli import apply

    base = (Message.text("user", "Determine whether a movie review is positive or negative."),)
    np01 = resolve(library, "NP01")
    assert np01.separator == "none"
    # NegativePrompt's getPrompt(): ori_prompt + Negative_SET[pnum - 1]
    assert apply(base, np01)[0].content == base[0].content + PUBLISHED["negativeprompt"]["code_order"][0]
    assert resolve(library, "EP02").separator == "space"
    assert resolve(library, "NP01", placement="prefix").separator == "none"
    assert resolve(library, "EP02", separator="newline").separator == "newline"
    assert resolve(library, "EP02", placement="system").separator == "newline"


def test_sac_materials_are_the_published_ones(library) -> None:
    reference = PUBLISHED["sac"]
    items = {fields_of(i, SacFields).trait: fields_of(i, SacFields) for i in library.items("sac")}
    assert list(items) != [] and len(reference["traits"]) == 16
    for ref in reference["traits"]:
        got = items[ref["trait"]]
        assert got.factor == ref["pf16_factor"]
        assert got.naive_prompt == ref["naive_prompt"]
        assert got.adjectives == {int(k): v for k, v in ref["intensity_adjectives"].items()}
        assert got.p2_description == ref["p2_description"]
        assert got.p2_description_reversed == ref["p2_description_reversed"]
        assert got.probe_items == ref["intensity_probe_items"]
    factors = sac.intensity_factors()
    for got, ref in zip(factors, reference["intensity_factors"], strict=True):
        assert (got.factor, got.stem) == (ref["factor"], ref["stem"])
        assert got.anchors == {int(k): v for k, v in ref["anchors"].items()}
    assert builtin_tasks()["inventory/sac_induced"].template.system == reference["system_message"]


def test_sac_template_is_the_published_code_template() -> None:
    """The induction (stimuli/sac.yaml) + the SAC-Induced task's template (tasks/inventory.yaml),
    with the target clause in its slot, is the published f-string, character for character."""
    data = sac.sac_data()
    task = builtin_tasks()["inventory/sac_induced"].template.user
    block = task.replace("{preamble}", "\n").replace("{target_clause}", data.target_clause).replace("{trait_name}", "{trait}")
    ours = "\n".join(data.induction_template) + block.replace("{input}", "{intensity_question} {question}")
    code = PUBLISHED["sac"]["build_prompt_template"]
    for n in range(1, 6):
        code = code.replace("{adjectives.get(%d, 'N/A')}" % n, "{adjectives_%d}" % n)
        code = code.replace("{intensity_answers[%d]}" % (n - 1), "{anchor_%d}" % n)
    assert ours == code


@pytest.mark.parametrize("mode", ["code_faithful", "paper_intended"])
@pytest.mark.parametrize("level", [1, 3, 5])
def test_sac_prompt_renders_as_the_published_code_does(library, mode: str, level: int) -> None:
    """A SAC-Induced trial's prompt == the authors' f-string evaluated on their data, for every
    probe item and factor; code_faithful keeps the N/A bug."""
    trait = next(t for t in PUBLISHED["sac"]["traits"] if t["trait"] == "EMOTIONAL STABILITY")
    factors = {f["factor"]: f for f in PUBLISHED["sac"]["intensity_factors"]}
    task = builtin_tasks()["inventory/sac_induced"]
    condition = resolve(library, "SAC/emotional_stability", params={"level": level, "mode": mode})
    for item in task.items(240, 0):
        meta = dict(item.meta)
        stimulus = condition.for_item(meta)
        expected = sac_code_prompt(trait, level=level, mode=mode, assessed=meta["trait_name"], question=meta["probe"], factor=factors[meta["factor"]])
        system, user = build_prompt(task.render(item), (stimulus,))
        assert (system.content, user.content) == (PUBLISHED["sac"]["system_message"], expected), item.id
    stimulus = resolve(library, "SAC/emotional_stability", params={"level": level, "mode": mode, "assessed_trait": "anxiety"})
    adjective_lines = [line for line in stimulus.text.splitlines() if line.startswith("    1: ")]
    assert adjective_lines == (["    1: N/A, "] if mode == "code_faithful" else [f"    1: {', '.join(trait['intensity_adjectives'][1])}, "])
    assert stimulus.params == {"level": level, "mode": mode, "assessed_trait": "anxiety"}


def test_sac_defaults_assess_the_target_trait_in_the_paper_intended_mode(library) -> None:
    stimulus = resolve(library, "SAC/warmth", params={"level": 2})
    assert stimulus.params == {"level": 2, "mode": "paper_intended", "assessed_trait": "WARMTH"}
    assert stimulus.placement == "prefix" and stimulus.separator == "newline"
    assert "set to intensity level 2." in stimulus.text and "2: somewhat friendly, moderately empathetic, sometimes supportive, " in stimulus.text


@pytest.mark.parametrize(
    ("intensity", "band"), [(0.0, "very low"), (0.19, "very low"), (0.2, "low"), (0.5, "moderate"), (0.79, "high"), (1.0, "very high")]
)
def test_big_five_persona_renders_trait_intensity_and_situation(library, intensity: float, band: str) -> None:
    stimulus = resolve(library, "BIG5/extraversion", params={"intensity": intensity, "situation": "A customer asks for a refund."})
    assert stimulus.placement == "system"
    assert stimulus.text == (
        "The situation: A customer asks for a refund.\n"
        f"Take on a persona whose extraversion is {band}: {intensity:.2f} on a scale from 0 to 1, where 0 means reserved, "
        "quiet and reflective and 1 means outgoing, talkative and energetic. Let this trait show in how you respond, "
        "as far as the situation calls for it."
    )
    assert stimulus.params == {"intensity": intensity, "situation": "A customer asks for a refund."}
    assert not resolve(library, "BIG5/extraversion", params={"intensity": intensity}).text.startswith("The situation")


def test_heart_phrases_are_concise_distinct_and_each_its_own_id(library) -> None:
    items = library.items("heart")
    assert len({i.id for i in items}) == len(items) == len({i.text for i in items})
    for item in items:
        assert item.id == f"HEART/{heart.emotion_of(item)}/{item.id.rsplit('/', 1)[1]}"
        assert len(item.text.split()) <= 14, item.text
    assert [i.id for i in heart.phrases(tone="encouraging")] == [i.id for i in items if heart.emotion_of(i) in ("happiness", "surprise")]
