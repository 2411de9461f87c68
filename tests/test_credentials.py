"""Credentials in study files (issue 13): keys come from the environment, so a model's or the
judge's `params` or `api_base` carrying one is refused with one line naming the file and the
field, exit code 2, nothing written, the value never shown. Names are judged by their parts
however cased and separated; any value holding a secret environment variable's value is refused
whatever its name. Ordinary sampling parameters (`max_tokens` counts tokens) pass.

Every endpoint here is 127.0.0.1; the refused studies never reach a call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli, sim_study, write_study
from workbench import api
from workbench.core.errors import UserError
from workbench.providers.credentials import find_credential, is_credential_name
from workbench.store import connect_reader
from workbench.study.spec import load_study

FAKE_KEY = "sk-fake-0123456789abcdef"  # set as OPENAI_API_KEY for every test here
BASE = "http://127.0.0.1:9/v1"


@pytest.fixture(autouse=True)
def fake_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)


def _model(params: dict[str, Any] | None = None, api_base: str = BASE) -> dict[str, Any]:
    return {"id": "openai/study-model", "api_base": api_base, "params": {"temperature": 0.0, **(params or {})}}


def _study(model: dict[str, Any] | None = None, judge: dict[str, Any] | None = None) -> dict[str, Any]:
    study = sim_study(name="credentials")
    if model is not None:
        study["models"] = [study["models"][0], model]
    if judge is not None:
        study["judge"] = judge
    return study


# form -> (study, the field path the message names). The first group was refused before issue 13,
# the rest were accepted and written into runs.spec_json, trials.model_params_json and calls.params_json.
REFUSED_BEFORE = {
    "api_key": (_study(_model({"api_key": "sk-inline"})), "models[1].params.api_key"),
    "apiKey": (_study(_model({"apiKey": "sk-inline"})), "models[1].params.apiKey"),
    "extra_headers.Authorization": (_study(_model({"extra_headers": {"Authorization": "Bearer sk-inline"}})), "models[1].params.extra_headers.Authorization"),
    "extra_body[0].token": (_study(_model({"extra_body": [{"token": "t-inline"}]})), "models[1].params.extra_body[0].token"),
    "user:pass@ in api_base": (_study(_model(api_base="http://user:pass@127.0.0.1:9/v1")), "models[1].api_base"),
    "?api-key= in api_base": (_study(_model(api_base=f"{BASE}?api-key=abc")), "models[1].api_base"),
    "judge params": (_study(judge=_model({"api_key": "sk-inline"})), "judge.params.api_key"),
}
ACCEPTED_BEFORE = {
    **{
        name: (_study(_model({name: "inline-credential"})), f"models[1].params.{name}")
        for name in ("accessToken", "authToken", "clientSecret", "privateKey", "passwd")
    },
    "extra_headers.Cookie": (_study(_model({"extra_headers": {"Cookie": "session=abc"}})), "models[1].params.extra_headers.Cookie"),
    "extra_headers.X-Auth": (_study(_model({"extra_headers": {"X-Auth": "abc"}})), "models[1].params.extra_headers.X-Auth"),
    "extra_body.auth": (_study(_model({"extra_body": {"auth": "abc"}})), "models[1].params.extra_body.auth"),
    "'api_key ' with a trailing space": (_study(_model({"api_key ": "sk-inline"})), "models[1].params.api_key "),
    "key in the api_base path": (_study(_model(api_base=f"http://127.0.0.1:9/{FAKE_KEY}/v1")), "models[1].api_base"),
    "?sig= in api_base": (_study(_model(api_base=f"{BASE}?sig=abc")), "models[1].api_base"),
    "?code= in api_base": (_study(_model(api_base=f"{BASE}?code=abc")), "models[1].api_base"),
    "#api_key= in api_base": (_study(_model(api_base=f"{BASE}#api_key=abc")), "models[1].api_base"),
    "$OPENAI_API_KEY as extra_headers.Cookie": (_study(_model({"extra_headers": {"Cookie": FAKE_KEY}})), "models[1].params.extra_headers.Cookie"),
    "$OPENAI_API_KEY under an ordinary name": (_study(_model({"extra_body": {"note": FAKE_KEY}})), "models[1].params.extra_body.note"),
    "$OPENAI_API_KEY inside a longer value": (_study(_model({"stop": ["x", f"Bearer {FAKE_KEY}"]})), "models[1].params.stop[1]"),
    "$OPENAI_API_KEY as a header name": (_study(_model({"extra_headers": {FAKE_KEY: "x"}})), "models[1].params.extra_headers"),
    "$OPENAI_API_KEY in an api_base query value": (_study(_model(api_base=f"{BASE}?q={FAKE_KEY}")), "models[1].api_base"),
    "$OPENAI_API_KEY in the judge's params": (_study(judge=_model({"extra_body": {"note": FAKE_KEY}})), "judge.params.extra_body.note"),
}
FORMS = {**REFUSED_BEFORE, **ACCEPTED_BEFORE}


@pytest.mark.parametrize("form", list(FORMS))
def test_a_credential_in_a_study_is_refused_naming_the_field(tmp_path: Path, form: str) -> None:
    study, field = FORMS[form]
    path = write_study(tmp_path / "study.yaml", study)
    with pytest.raises(UserError) as caught:
        load_study(path)
    error = caught.value
    assert (error.file, error.field) == (str(path), field)
    assert "must come from the environment" in error.detail
    assert FAKE_KEY not in str(error) and "inline" not in str(error)


# Parameters litellm passes on (OpenAI's, Anthropic's, vLLM's and llama.cpp's): none is a credential.
ORDINARY_PARAMS: dict[str, Any] = {
    "temperature": 0.7, "max_tokens": 64, "max_completion_tokens": 64, "top_p": 0.9, "seed": 7, "n": 1,
    "stop": ["\n\n", "Answer:"], "logit_bias": {"50256": -100}, "response_format": {"type": "json_object"},
    "presence_penalty": 0.1, "frequency_penalty": 0.1, "logprobs": True, "top_logprobs": 2, "user": "study-7",
    "reasoning_effort": "low", "thinking": {"type": "enabled", "budget_tokens": 1024}, "token_limit": 100,
    "prompt_cache_key": "study-7", "parallel_tool_calls": False, "tool_choice": "none", "service_tier": "auto",
    "metadata": {"study": "credentials"}, "timeout": 30, "num_retries": 0, "stream": False,
    "extra_body": {"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1, "n_keep": 0, "cache_prompt": True,
                   "skip_special_tokens": True, "stop_token_ids": [2], "max_new_tokens": 8, "min_tokens": 1},
    "extra_headers": {"X-Request-Id": "abc", "Accept-Language": "en"}, "extra_query": {"api-version": "2024-02-01"},
    "api_version": "2024-02-01", "country_code": "de", "sig_figs": 3,
}
ORDINARY_BASES = [BASE, f"{BASE}?api-version=2024-02-01", "http://127.0.0.1:9/openai/deployments/model-a", "http://127.0.0.1:9"]


@pytest.mark.parametrize("api_base", ORDINARY_BASES)
def test_ordinary_params_and_endpoints_pass(tmp_path: Path, api_base: str) -> None:
    study = _study(_model(ORDINARY_PARAMS, api_base=api_base), judge=_model({"max_tokens": 8}, api_base=api_base))
    loaded = load_study(write_study(tmp_path / "study.yaml", study))
    assert loaded.spec.models[1].params["max_completion_tokens"] == 64


def _dump(db: Path) -> str:
    con = connect_reader(db)
    tables = con.execute("SELECT table_catalog, table_schema, table_name FROM information_schema.tables ORDER BY ALL").fetchall()
    assert {"runs", "trials", "calls"} <= {name for *_, name in tables}
    return repr({".".join(t): con.execute('SELECT * FROM "{}"."{}"."{}" ORDER BY ALL'.format(*t)).fetchall() for t in tables})


def test_a_refused_study_writes_nothing_to_the_log(tmp_path: Path) -> None:
    """Through the CLI, into a log that already holds a run: one line, exit 2, no new row, the
    key (an accepted form before: a Cookie header holding $OPENAI_API_KEY) nowhere."""
    db = tmp_path / "runs" / "log.duckdb"
    env = {"OPENAI_API_KEY": FAKE_KEY}
    api.run(write_study(tmp_path / "good.yaml", sim_study(name="good", tasks=[{"task": "ii/sum", "n": 2}])), db)
    before = _dump(db)
    sim = sim_study(name="leaky")
    sim["models"][0]["params"]["extra_headers"] = {"Cookie": FAKE_KEY}
    path = write_study(tmp_path / "leaky.yaml", sim)
    result = run_cli("run", str(path), "--db", str(db), env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert f"{path}: models[0].params.extra_headers.Cookie: " in message and "environment" in message
    assert FAKE_KEY not in result.stdout + result.stderr
    assert _dump(db) == before and FAKE_KEY not in before


def test_models_check_refuses_a_key_in_the_api_base() -> None:
    result = run_cli("models", "check", "openai/mine", "--api-base", f"{BASE}?sig=abc", env={"OPENAI_API_KEY": FAKE_KEY})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--api-base: credentials in the URL (query parameter 'sig')" in result.stderr


# Credential names as parts, and ordinary ones: each is judged the same however it is written.
CREDENTIAL_NAMES = [
    ("api", "key"), ("access", "token"), ("auth", "token"), ("client", "secret"), ("private", "key"), ("passwd",),
    ("password",), ("cookie",), ("authorization",), ("auth",), ("token",), ("secret",), ("sig",), ("code",),
    ("refresh", "token"), ("hf", "token"), ("aws", "secret", "access", "key"), ("subscription", "key"), ("credentials",),
]
ORDINARY_NAMES = [
    ("max", "tokens"), ("max", "completion", "tokens"), ("token", "limit"), ("budget", "tokens"), ("prompt", "cache", "key"),
    ("temperature",), ("top", "p"), ("seed",), ("stop",), ("logit", "bias"), ("response", "format"), ("stop", "token", "ids"),
    ("skip", "special", "tokens"), ("country", "code"), ("api", "version"), ("tokenizer", "mode"), ("idempotency", "key"),
]
_CASES = {"lower": str.lower, "upper": str.upper, "title": str.title}


@st.composite
def spelled(draw: st.DrawFn, parts: tuple[str, ...]) -> str:
    """`parts` written one of the ways a config file might: snake, kebab, dotted, spaced, run
    together, camelCase or PascalCase, in any case, with stray spaces around."""
    if draw(st.booleans()):
        cased = [draw(st.sampled_from(sorted(_CASES))) for _ in parts]
        name = draw(st.sampled_from(["_", "-", ".", " ", "", "__"])).join(_CASES[c](p) for c, p in zip(cased, parts))
    else:
        first = parts[0].title() if draw(st.booleans()) else parts[0]
        name = first + "".join(p.title() for p in parts[1:])
    return draw(st.sampled_from(["", " "])) + name + draw(st.sampled_from(["", " ", "  "]))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_names_are_judged_by_their_parts_however_written(data: st.DataObject) -> None:
    credential = data.draw(st.booleans())
    parts = data.draw(st.sampled_from(CREDENTIAL_NAMES if credential else ORDINARY_NAMES))
    name = data.draw(spelled(parts))
    assert is_credential_name(name) is credential, name


# With a digit, as keys have, so that a secret is no word of the message that must not show it.
_SECRET = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"), min_size=8, max_size=60).filter(
    lambda text: any(c.isdigit() for c in text)
)
_ENV_NAME = st.sampled_from(["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HF_TOKEN", "AZURE_CLIENT_SECRET", "DB_PASSWORD", "MY_SERVICE_PASSWD"])


@settings(max_examples=200, deadline=None)
@given(secret=_SECRET, env_name=_ENV_NAME, depth=st.integers(0, 4), padded=st.booleans(), in_list=st.booleans())
def test_a_secret_environment_value_is_found_anywhere_in_params(secret: str, env_name: str, depth: int, padded: bool, in_list: bool) -> None:
    value: Any = f"prefix {secret} suffix" if padded else secret
    value = [1, value] if in_list else value
    for level in range(depth):
        value = {f"level{level}": value}
    found = find_credential({"temperature": 0.0, "note": value}, None, {env_name: secret, "HOME": "/home/someone"})
    assert found is not None and found.field.startswith("params.note")
    assert secret not in found.field + found.message and f"${env_name}" in found.message


@settings(max_examples=200, deadline=None)
@given(secret=_SECRET, env_name=_ENV_NAME, part=st.sampled_from(["path", "query value", "fragment", "encoded query"]))
def test_a_secret_environment_value_is_found_in_any_part_of_the_url(secret: str, env_name: str, part: str) -> None:
    encoded = "".join(f"%{ord(c):02X}" for c in secret)
    url = {
        "path": f"http://127.0.0.1:9/{secret}/v1",
        "query value": f"{BASE}?q={secret}",
        "fragment": f"{BASE}#{secret}",
        "encoded query": f"{BASE}?q={encoded}",
    }[part]
    found = find_credential({}, url, {env_name: secret})
    assert found is not None and found.field == "api_base" and secret not in found.message


def test_short_or_unnamed_environment_values_are_not_secrets() -> None:
    """`HOME`'s value or a 7-character `*_KEY` would refuse ordinary text."""
    environ = {"HOME": "/home/someone", "SHORT_KEY": "1234567", "TOKENIZERS_PARALLELISM": "falsefalse"}
    params = {"extra_body": {"path": "/home/someone/x", "n": 1234567, "flag": "falsefalse"}}
    assert find_credential(params, "http://127.0.0.1:9/home/someone", environ) is None


def test_deep_or_aliased_params_are_walked_in_bounded_time() -> None:
    """Nesting deeper than Python's recursion limit, and a YAML alias bomb (9^9 leaves, 81 nodes)."""
    deep: Any = {"extra_headers": {"Cookie": "abc"}}
    for _ in range(5000):
        deep = [deep]
    found = find_credential({"extra_body": deep}, None, {})
    assert found is not None and found.field == "params.extra_body" + "[0]" * 5000 + ".extra_headers.Cookie"
    bomb_yaml = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
    )
    bomb = yaml.safe_load(bomb_yaml)
    assert find_credential({"extra_body": bomb}, None, {"OPENAI_API_KEY": FAKE_KEY}) is None
