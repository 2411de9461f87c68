"""A HEART condition's configuration (`solver: heart`, `solver_params:` in a study file), checked
when the study loads and completed into the frozen plan every trial of the condition carries and
the log records (conditions.solver_params_json): defaults filled, the template's text, the phrase
bank by emotion, and the loop prompts its strategy uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError

from ...core.errors import UserError, validation_error
from ...stimuli import AppliedStimulus, StimulusItem, StimulusLibrary, feedback_phrases
from ...stimuli.renderers import Strict
from .bank import PhraseBank
from .feedback import FEEDBACK
from .schedules import DEFAULT_SCHEDULE, PARAMETER_WORDING, Schedule, dump_schedule, parse_schedule
from .strategies import STRATEGIES

Mode = Literal["oracle", "verifier_free"]
ORACLE_STRATEGY = "oracle"

# Which phrases a condition draws, by their `asserts_error` tag. Without a verifier a phrase that
# says the answer is wrong is false whenever it was right, so verifier-free conditions draw only
# phrases that claim no error unless they choose otherwise; under the oracle the loop gives
# feedback only after a wrong answer, so every claim is true. Every feedback kind is filtered
# alike: the neutral baseline is matched to the emotional phrases on the tag.
PhraseChoice = Literal["no_error_claim", "error_claim", "any"]
PHRASE_CHOICES: dict[str, Callable[[bool], bool]] = {
    "no_error_claim": lambda claims: not claims,
    "error_claim": lambda claims: claims,
    "any": lambda claims: True,
}
DEFAULT_PHRASES: dict[str, PhraseChoice] = {"oracle": "any", "verifier_free": "no_error_claim"}


class HeartConfig(Strict):
    """What a study file sets."""

    rounds: int = Field(ge=1, le=50)  # T: feedback rounds after the first answer
    mode: Mode
    feedback: str = "emotional"  # emotional (HEART) | neutral | self_refine
    schedule: str | dict[str, Any] | None = None  # emotional feedback only; default alternating
    history: Literal["full", "last"] = "full"  # the whole conversation, or the task and the last answer only
    template: str | None = None  # feedback template name or text with {phrase}; default by mode
    final: str | None = None  # verifier_free only: last | majority | self_verify | synthesis
    phrases: PhraseChoice | None = None  # by their asserts_error tag; default by mode (DEFAULT_PHRASES)


class HeartPlan(Strict):
    """What the trials carry and the log records."""

    rounds: int
    mode: Mode
    feedback: str
    schedule: dict[str, Any] | None
    history: Literal["full", "last"]
    template: str
    template_text: str
    strategy: str
    bank: dict[str, list[str]]  # emotion -> phrase ids the condition carries
    tones: dict[str, str | None]  # emotion -> tone
    prompts: dict[str, Any]  # the loop prompts the strategy uses
    synthesiser: str | None = None  # who writes a synthesised final answer
    phrases: PhraseChoice = "any"  # which phrases by their asserts_error tag (plans logged before it drew from all)
    asserts_error: dict[str, bool] = Field(default_factory=dict)  # phrase id -> its tag, for every phrase in the bank

    def phrase_bank(self) -> PhraseBank:
        return PhraseBank.of(self.bank, self.tones)

    def schedule_model(self) -> Schedule | None:
        return None if self.schedule is None else parse_schedule(self.schedule)

    def loop_prompts(self) -> feedback_phrases.LoopPrompts:
        """The prompts the strategy uses, the rest taken from the built-in family (never sent)."""
        return feedback_phrases.loop_prompts().model_copy(update=self._typed_prompts())

    def _typed_prompts(self) -> dict[str, Any]:
        return {k: feedback_phrases.Verdicts(**v) if k == "verdicts" else v for k, v in self.prompts.items()}


def _config(params: Mapping[str, Any]) -> HeartConfig:
    try:
        return HeartConfig.model_validate(dict(params))
    except ValidationError as exc:
        raise validation_error(exc, field="solver_params", model=HeartConfig, wording=PARAMETER_WORDING) from None


def _strategy(config: HeartConfig) -> str:
    if config.mode == "oracle":
        if config.final is not None:
            raise UserError("`final` applies in verifier_free mode; in oracle mode the verifier decides", field="solver_params.final")
        return ORACLE_STRATEGY
    choices = [name for name in STRATEGIES.names() if not STRATEGIES.get(name).needs_gold]
    if config.final is None:
        raise UserError(f"verifier_free mode needs `final`, the final-answer strategy (allowed: {', '.join(choices)})", field="solver_params.final")
    if config.final not in choices:
        raise UserError(f"unknown final-answer strategy {config.final!r} (allowed: {', '.join(choices)})", field="solver_params.final")
    return config.final


def prepare(params: Mapping[str, Any], stimuli: tuple[AppliedStimulus, ...], library: StimulusLibrary) -> tuple[dict[str, Any], tuple[AppliedStimulus, ...]]:
    """The SolverSetup of `heart`: the plan, and the condition's stimuli plus the phrases it draws on."""
    listed = [s.id for s in stimuli if s.placement == "feedback"]
    if listed:
        raise UserError(
            f"{listed[0]} is a feedback phrase: the HEART loop draws them by its schedule; name emotions or "
            "phrase ids in solver_params.schedule (e.g. {name: sequence, steps: [sadness, HEART/happiness/2]})",
            field="stimuli",
        )
    config = _config(params)
    if config.feedback not in FEEDBACK:
        raise UserError(FEEDBACK.unknown_message(config.feedback), field="solver_params.feedback")
    kind = FEEDBACK.get(config.feedback)
    strategy = _strategy(config)
    if config.schedule is not None and not kind.takes_schedule:
        raise UserError(f"`schedule` applies to emotional feedback, not {config.feedback!r}", field="solver_params.schedule")
    schedule = _field(lambda: _schedule(config.schedule or DEFAULT_SCHEDULE, library)) if kind.takes_schedule else None
    prompts = feedback_phrases.loop_prompts(library)
    template = config.template or prompts.templates.get(config.mode) or feedback_phrases.default_template(library)
    template_text = _field(lambda: feedback_phrases.template_text(template, library), "template")
    choice = config.phrases or DEFAULT_PHRASES[config.mode]
    items = _field(lambda: _by_claim(kind.pool(schedule, library), choice, schedule.phrase_ids() if schedule else []))
    phrases = tuple(_field(lambda: feedback_phrases.feedback_stimulus(item.id, template, library), "template") for item in items)
    bank: dict[str, list[str]] = {}
    for item in items:
        bank.setdefault(feedback_phrases.emotion_of(item), []).append(item.id)
    tone_of = feedback_phrases.emotions(library)
    tones = {emotion: tone_of.get(emotion) for emotion in bank}
    if schedule is not None:
        _field(lambda: schedule.check(PhraseBank.of(bank, tones)))
    used = STRATEGIES.get(strategy).prompts
    plan = HeartPlan(
        rounds=config.rounds,
        mode=config.mode,
        feedback=config.feedback,
        schedule=dump_schedule(schedule) if schedule is not None else None,
        history=config.history,
        template=template,
        template_text=template_text,
        strategy=strategy,
        bank=bank,
        tones=tones,
        prompts={name: prompts.model_dump(mode="json")[name] for name in used},
        synthesiser="the trial's model" if "synthesis" in used else None,
        phrases=choice,
        asserts_error={item.id: feedback_phrases.asserts_error(item) for item in items},
    )
    return plan.model_dump(mode="json"), (*stimuli, *phrases)


def _by_claim(items: list[StimulusItem], choice: str, named: list[str]) -> list[StimulusItem]:
    """The phrases `choice` admits by their asserts_error tag; a phrase the schedule names, or an
    emotion left with none, that it does not admit fails."""
    admits = PHRASE_CHOICES[choice]
    tags = {item.id: feedback_phrases.asserts_error(item) for item in items}
    refused = [phrase_id for phrase_id in named if not admits(tags[phrase_id])]
    if refused:
        raise UserError(f"{refused[0]} is tagged asserts_error: {str(tags[refused[0]]).lower()}, and this condition draws phrases: {choice} "
                        f"(set `phrases`: {', '.join(PHRASE_CHOICES)}; verifier_free mode defaults to {DEFAULT_PHRASES['verifier_free']})", field="schedule.steps")
    kept = [item for item in items if admits(tags[item.id])]
    emptied = sorted({feedback_phrases.emotion_of(i) for i in items} - {feedback_phrases.emotion_of(i) for i in kept})
    if emptied:
        raise UserError(f"no {emptied[0]} phrase of the heart family fits phrases: {choice} (choose from {', '.join(PHRASE_CHOICES)}, "
                        "or tag more phrases with asserts_error)", field="phrases")
    return kept


def _schedule(raw: Any, library: StimulusLibrary) -> Schedule:
    """The study's schedule, its names classified against the heart family's emotions and their phrase ids."""
    emotions = feedback_phrases.emotions(library)
    phrase_ids = [item.id for item in feedback_phrases.phrases(library=library) if feedback_phrases.emotion_of(item) in emotions]
    return parse_schedule(raw).classify(list(emotions), phrase_ids)


def _field(build: Any, default_field: str | None = None) -> Any:
    """Run `build`; a UserError's field is made relative to the condition (solver_params.<...>)."""
    try:
        return build()
    except UserError as exc:
        inner = exc.field if exc.field and not exc.field.startswith("params.") else default_field
        raise UserError(exc.detail, field=f"solver_params.{inner}" if inner else "solver_params") from None


def consumes_gold(plan: Mapping[str, Any]) -> bool:
    return STRATEGIES.get(plan["strategy"]).needs_gold


def max_calls(plan: Mapping[str, Any], stimuli: tuple[AppliedStimulus, ...]) -> int:
    """Rounds 0..T each answer and may be judged by the model; then the strategy may finish with calls of its own."""
    strategy = STRATEGIES.get(plan["strategy"])
    return (plan["rounds"] + 1) * (1 + strategy.judge_calls) + strategy.final_calls
