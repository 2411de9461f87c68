"""`inventory/sac_induced`: SAC's intensity questions (Chittem et al. 2025). Every trait's three
probe items asked under each of the five intensity factors (Frequency, Depth, Threshold, Effort,
Willingness), answered 1 to 5: 16 x 3 x 5 = 240 ratings per condition.

Items come from the SAC data (stimuli/sac.yaml: probe items, factor stems and answer labels,
verbatim); the question's wording is the task's template (tasks/inventory.yaml). A study sets the
target trait and level with a SAC condition (`{id: SAC/warmth, level: 5}`) beside a plain control:
the induced prompt is then the authors' build_prompt text, and the control asks the same question
without the induction. An item's gold is "5", so the `likert` score is (rating - 1) / 4 and the
rating is 1 + 4 * score.

The report (`sac_induced` in `run --json`; workbench/trait_report.py) gives per model, condition,
trait and factor the mean rating and the change against the control, paired on items.
"""

from __future__ import annotations


from ..stimuli.sac import intensity_factors, sac_traits
from . import CAPACITY, SOURCES, TaskItem, TaskSpec
from .inventory import balanced

SOURCE = "sac_probes"
HIGH = "5"  # the scale's top: the target that makes the likert score a rating


def probe_items() -> list[TaskItem]:
    """Every (factor, trait, probe) question, factor by factor: the factor's stem and the probe
    item as the input, with the trait it asks about (`trait`, `trait_name`), the factor and its
    answer labels (`anchor_1`..`anchor_5`)."""
    items = []
    for factor in intensity_factors():
        anchors = tuple((f"anchor_{n}", factor.anchors[n]) for n in range(1, 6))
        for trait in sac_traits():
            for number, probe in enumerate(trait.probe_items, start=1):
                meta = (("trait", trait.factor), ("trait_name", trait.trait), ("factor", factor.factor), *anchors, ("probe", probe))
                question = f"{factor.stem} {probe}"  # the code's "{intensity_question} {question}"
                items.append(TaskItem(id=f"{trait.factor}-{factor.factor.lower()}-{number}", input=question, targets=(HIGH,), meta=meta))
    return items


@SOURCES.register(SOURCE)
def sac_probe_source(spec: TaskSpec, n: int, seed: int) -> list[TaskItem]:
    """n questions; the (factor, trait) pairs take turns, so 16 cover every trait on Frequency and
    80 every trait on every factor, each pair's three probes in a seeded order."""
    return balanced(spec, probe_items(), lambda item: (dict(item.meta)["factor"], dict(item.meta)["trait"]), seed)[:n]


CAPACITY.add(SOURCE, lambda spec: len(probe_items()))
