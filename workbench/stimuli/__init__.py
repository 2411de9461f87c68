"""The stimulus library: families as data (`stimuli/*.yaml`), rendered and placed by registered
functions, resolved into the AppliedStimulus each trial records.

- model.py        items, families, AppliedStimulus (the data types)
- library.py      loading and validating family files, the built-in library, user files
- renderers.py    item + parameters -> text (plain text; the families below add their own)
- placements.py   where a stimulus goes: prefix, suffix, system, few_shot_header, feedback, multi_agent
- resolve.py      a reference in a study -> AppliedStimulus
- sac.py, persona.py, feedback_phrases.py (HEART), multiplexity.py   the parameterised and program families

Every module here is a plugin that workbench.plugins.load_builtins() imports.
"""

from __future__ import annotations

from .library import StimulusLibrary, builtin_library, load_family_file
from .model import SEPARATORS, AppliedStimulus, Family, Separator, StimulusItem
from .placements import PLACEMENTS, Placement, apply, apply_all, build_prompt, choose_solver, prompt_stage
from .renderers import RENDERERS
from .resolve import resolve

__all__ = [
    "PLACEMENTS", "RENDERERS", "SEPARATORS", "AppliedStimulus", "Family", "Placement", "Separator", "StimulusItem",
    "StimulusLibrary", "apply", "apply_all", "build_prompt", "prompt_stage", "builtin_library", "choose_solver", "load_family_file", "resolve",
]
