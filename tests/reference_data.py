"""The published materials the stimulus tests compare with (tests/reference/published_stimuli.yaml),
and the SAC prompt built the way the authors' code builds it, as an independent oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PUBLISHED: dict[str, Any] = yaml.safe_load((Path(__file__).parent / "reference" / "published_stimuli.yaml").read_text(encoding="utf-8"))


def sac_code_prompt(trait: dict[str, Any], *, level: int, mode: str, assessed: str | None = None,
                    question: str = "", factor: dict[str, Any] | None = None) -> str:
    """Evaluate the published build_prompt f-string with the published data.

    code_faithful: the adjective table as the code holds it (string keys, read with int keys).
    paper_intended: the same table with int keys, each level's adjectives joined by ", "."""
    adjectives = {str(k): v for k, v in trait["intensity_adjectives"].items()}
    if mode == "paper_intended":
        adjectives = {int(k): ", ".join(v) for k, v in trait["intensity_adjectives"].items()}
    factor = factor or PUBLISHED["sac"]["intensity_factors"][0]
    namespace = {
        "trait_const": trait["trait"].upper(),
        "trait": (assessed or trait["trait"]).upper(),
        "definition": trait["p2_description"],
        "adjectives": adjectives,
        "intensity_scale": level,
        "intensity_question": factor["stem"],
        "question": question,
        "intensity_answers": [factor["anchors"][n] for n in range(1, 6)],
    }
    # The template is a fixed, published string from the reference file, not user input.
    return eval('f"""' + PUBLISHED["sac"]["build_prompt_template"] + '"""', {}, namespace)  # noqa: S307
