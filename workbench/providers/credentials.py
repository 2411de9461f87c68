"""Credentials out of study files: keys come from the environment (litellm reads OPENAI_API_KEY and
the like), so a model's `params` or `api_base` that carries one is refused before anything runs
and nothing of it reaches the log.

Two tests, both by data rather than by spelling:
- a name (a parameter at any depth, a URL's query or fragment parameter) whose parts, however
  cased and separated (`accessToken`, `X-Auth`, `"api_key "`, `APIKEY`), make it a credential's
  name: `max_tokens` counts tokens and `prompt_cache_key` names a cache entry, so they pass;
- a value anywhere (parameter names and values, every part of the URL) that holds the value of a
  secret-looking environment variable, whatever it is called in the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

# Parts that make a name a credential's whatever stands beside them.
_ALWAYS = frozenset(
    {
        "secret", "secrets", "password", "passwords", "passwd", "passphrase", "credential", "credentials", "creds",
        "authorization", "auth", "authn", "authz", "oauth", "cookie", "cookies", "signature", "bearer", "jwt",
    }
)
# Parts that say which credential a key, token or code is: `api_key`, `access_token`, `auth_code`.
_ACCESS = frozenset(
    {
        "api", "access", "private", "client", "master", "refresh", "session", "id", "service", "subscription",
        "personal", "signing", "admin", "app", "account", "sas", "security", "shared", "license", "encryption",
        "deploy", "verification", "function",
    }
)
# Parts beside which a token is a unit of text, not a credential: `max_tokens`, `token_limit`.
_TEXT_UNITS = frozenset(
    {
        "max", "min", "limit", "limits", "count", "counts", "num", "number", "n", "budget", "ids", "bos", "eos",
        "pad", "unk", "sep", "stop", "special", "logit", "per", "total", "prompt", "completion", "output", "input",
        "new", "reasoning", "thinking", "cached", "length", "top", "usage", "skip", "add", "between", "spaces",
    }
)
# Parts beside which a key names an entry, not a credential: `prompt_cache_key`, `idempotency_key`.
_ENTRY_KEYS = frozenset({"cache", "idempotency", "dedup", "dedupe", "deduplication", "sort", "partition", "routing", "answer"})
# Words that are credentials on their own or beside an access part, and the parts that make them
# ordinary instead (None: any other part does, so `country_code` and `sig_figs` pass, `?code=` not).
_QUALIFIED: dict[str, frozenset[str] | None] = {
    "key": _ENTRY_KEYS, "keys": _ENTRY_KEYS, "token": _TEXT_UNITS, "tokens": _TEXT_UNITS, "code": None, "sig": None,
}
_WORDS = _ALWAYS | _ACCESS | _TEXT_UNITS | _ENTRY_KEYS | frozenset(_QUALIFIED)
_LONGEST_WORD = max(map(len, _WORDS))
_NOT_ALPHANUMERIC = re.compile(r"[^0-9a-z]+")
_CASE_CHANGE = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
_LONGEST_RUN = 64  # a longer run of letters is no parameter's name; splitting it would cost time

MIN_SECRET_LENGTH = 8  # a shorter environment value ("1", "true") would match ordinary text


class Finding(NamedTuple):
    """Where a credential sits (`params.extra_headers.Cookie`, `api_base`) and what gave it away,
    never its value."""

    field: str
    what: str  # "a credential (by its name)", "credentials in the URL (query parameter 'sig')"

    @property
    def message(self) -> str:
        return f"{self.what} must come from the environment (litellm reads OPENAI_API_KEY and the like)"


def name_parts(name: str) -> tuple[str, ...]:
    """The lower-case parts of a name, split at any separator, at a lower-to-upper case change
    (`clientSecret`) and between letters and digits; a run of letters (`apikey`, `APIKey`,
    `ACCESSTOKEN`, `hftoken`) split further into the known words it ends in."""
    spaced = _CASE_CHANGE.sub(" ", name).lower()
    return tuple(word for part in _NOT_ALPHANUMERIC.split(spaced) if part for word in _known_words(part))


@lru_cache(maxsize=4096)
def _known_words(part: str) -> tuple[str, ...]:
    """`part` as known words, fewest first, after at most one unknown prefix (a vendor's name:
    `hf` + `token`); whole when it does not end in known words (`tokenizer`, `decoder`).
    Acronyms are left to this rather than to a case heuristic, which reads `APIkey` as `ap ikey`."""
    if part in _WORDS or part.isdigit() or len(part) > _LONGEST_RUN:
        return (part,)
    cover: list[tuple[str, ...] | None] = [None] * len(part) + [()]  # cover[i]: the words of part[i:]
    for start in range(len(part) - 1, -1, -1):
        splits = [(part[start:end], *tail) for end in range(start + 1, min(len(part), start + _LONGEST_WORD) + 1)
                  if part[start:end] in _WORDS and (tail := cover[end]) is not None]
        cover[start] = min(splits, key=len, default=None)
    for prefix, words in enumerate(cover):
        if words:
            return (part[:prefix], *words) if prefix else words
    return (part,)


def is_credential_name(name: str) -> bool:
    """Whether a parameter, URL parameter or environment variable named so holds a credential."""
    parts = set(name_parts(name))
    if parts & _ALWAYS:
        return True
    for word in parts & _QUALIFIED.keys():
        others = {p for p in parts - {word} if not p.isdigit()}
        ordinary = _QUALIFIED[word]
        if others & _ACCESS or not (others if ordinary is None else others & ordinary):
            return True
    return False


def secret_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Secret-looking environment variables (a credential's name, a value long enough to matter):
    value -> name, longest value first (a key containing another is found whole)."""
    found = {value: name for name, value in environ.items() if len(value) >= MIN_SECRET_LENGTH and is_credential_name(name)}
    return dict(sorted(found.items(), key=lambda item: len(item[0]), reverse=True))


def find_credential(params: Any, api_base: str | None, environ: Mapping[str, str] | None = None) -> Finding | None:
    """The first credential in a model's `params` (dicts and lists at any depth) or `api_base`."""
    secrets = secret_values(os.environ if environ is None else environ)
    return _in_params(params, secrets) or (_in_url(api_base, secrets) if api_base else None)


def _holding(text: str, secrets: Mapping[str, str]) -> str | None:
    """The name of the environment variable whose value `text` holds, if any."""
    return next((name for value, name in secrets.items() if value in text), None)


def _in_params(params: Any, secrets: Mapping[str, str]) -> Finding | None:
    """Walked with a stack, not by recursion, so that no depth of nesting can overflow it."""
    stack: list[tuple[str, Any]] = [("params", params)]
    seen: set[int] = set()  # a YAML alias repeats a node: judged once, so walking stays linear
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict | list):
            if id(value) in seen:
                continue
            seen.add(id(value))
        if isinstance(value, dict):
            for key in value:
                # A key holding a secret is reported at its parent's path: the path is shown, the key is the secret.
                found = _in_scalar(key, path, secrets, "a key holding the value of")
                if found:
                    return found
                if isinstance(key, str) and is_credential_name(key):
                    return Finding(f"{path}.{key}", "a credential (by its name)")
            stack += reversed([(f"{path}.{key}", inner) for key, inner in value.items()])
        elif isinstance(value, list):
            stack += reversed([(f"{path}[{i}]", inner) for i, inner in enumerate(value)])
        elif found := _in_scalar(value, path, secrets, "the value of"):
            return found
    return None


def _in_scalar(value: Any, path: str, secrets: Mapping[str, str], holding: str) -> Finding | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    name = _holding(str(value), secrets)
    return Finding(path, f"a credential ({holding} ${name})") if name else None


def _in_url(url: str, secrets: Mapping[str, str]) -> Finding | None:
    try:
        split = urlsplit(url)
    except ValueError:  # not a URL at all (`http://[::1`): only its whole text can be judged
        name = _holding(url, secrets)
        return Finding("api_base", f"credentials in the URL (the value of ${name})") if name else None
    if "@" in split.netloc:
        return Finding("api_base", "credentials in the URL (user info)")
    # Values first, so that a parameter named in the message below holds no secret of the environment.
    parts = {"host": unquote(split.netloc), "path": unquote(split.path), "query": unquote_plus(split.query), "fragment": unquote_plus(split.fragment)}
    for where, text in parts.items():
        name = _holding(text, secrets)
        if name:
            return Finding("api_base", f"credentials in the URL (its {where} holds the value of ${name})")
    for where in ("query", "fragment"):
        name = next((n for n, _ in parse_qsl(getattr(split, where), keep_blank_values=True) if is_credential_name(n)), None)
        if name is not None:
            return Finding("api_base", f"credentials in the URL ({where} parameter {name!r})")
    return None
