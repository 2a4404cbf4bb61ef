"""What is secret, and how it is kept out of everything we print, log, cache and write.

Secret: the values of HF_TOKEN and VERDICTS_API_KEY; the credentials inside VERDICTS_BASE_URL and
VERDICTS_ROUTER_URL (a password, a key in the path or the query string); and anything shaped like a Hugging Face
token (``hf_`` and 30 or more letters and digits), whoever's it is. Used as:

- ``public_url``: a URL as we show and record it (messages, progress, run report, sidecar, cache key);
- ``redact``: a message or log line (``<HF_TOKEN>``); ``scrub``: what a model or server sent us, before it is
  validated, cached, kept or written to a page (``[HF_TOKEN removed]``);
- ``secret_in``: which secret an editor's text holds, so that a file holding one is refused.

The ground floor: imports nothing of the pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import quote, unquote

SECRET_VARIABLES = ("HF_TOKEN", "VERDICTS_API_KEY")
URL_VARIABLES = ("VERDICTS_BASE_URL", "VERDICTS_ROUTER_URL")  # addresses that may carry a key
# A cut (a message clipped to a length) can end inside a secret: a prefix this long or longer is redacted too.
SECRET_PREFIX = 8
SHORTEST = 4  # a shorter value is not treated as secret: it would hide every such word

HF_TOKEN_SHAPE = re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}")

MASK = "***"  # what a URL shows in place of a credential
# How providers prefix their keys (OpenAI and most OpenAI-compatible servers sk-, Hugging Face hf_, GitHub gh*_).
KEY_PREFIX = re.compile(r"^(sk|pk|rk)[-_]|^hf_|^gh[opsur]_|^github_pat_", re.IGNORECASE)
# A path segment named like this is followed by a credential (/key/<key>/); a query parameter whose name has such
# a word, or ends in key, token or secret (apiKey, access_token, x-api-key), carries one (?api_key=...).
KEY_WORDS = frozenset({"key", "keys", "apikey", "token", "tokens", "secret", "password", "passwd", "pwd", "pass",
                       "auth", "authorization", "bearer", "sig", "signature", "credential", "credentials"})
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
RUN = re.compile(r"[A-Za-z0-9]{16,}")
FINGERPRINT = re.compile(r"^masked-[0-9a-f]{8}$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)?([^/?#]*)@")


def looks_random(text: str) -> bool:
    """A token rather than a name: a UUID, or 16 letters and digits in a row that mix two of lower case, upper case
    and digits (``a1B2...``, a hex digest). ``Qwen2.5-72B-Instruct`` and ``2024-02-01`` are names."""
    if UUID.match(text):
        return True
    for run in RUN.findall(text):
        classes = (any(c.islower() for c in run), any(c.isupper() for c in run), any(c.isdigit() for c in run))
        if sum(classes) >= 2:
            return True
    return False


def _is_key(text: str) -> bool:
    return bool(KEY_PREFIX.match(text)) and len(text) >= 12


def _names_key(name: str) -> bool:
    """``api_key``, ``accessToken``, ``x-api-key``, ``key``: a name that says a credential follows."""
    lowered = name.lower()
    return lowered.endswith(("key", "token", "secret")) or bool(KEY_WORDS & set(re.split(r"[^a-z0-9]+", lowered)))


@lru_cache(maxsize=64)
def _split(url: str, known: tuple[str, ...] = ()) -> tuple[str, tuple[str, ...]]:
    """``url`` as shown (see ``public_url``), and the credentials it held.

    Credentials: a password, a user name that looks like a key, a path segment or a query value that is a key
    (``sk-...``, ``hf_...``, one of the ``known`` secrets) or follows one named like a key (``/key/<it>/``,
    ``?api_key=<it>``). Hidden but not credentials, since they may name a deployment: other random-looking path
    segments, other query values. Those make the fingerprint; credentials never do.
    """
    text = url.strip()
    credentials: list[str] = []

    def is_credential(part: str) -> bool:
        return _is_key(unquote(part)) or part in known or unquote(part) in known

    userinfo = USERINFO.match(text)
    if userinfo:
        user, _, password = userinfo.group(2).partition(":")
        credentials += [unquote(part) for part in (password, user if looks_random(user) or is_credential(user)
                                                   else "") if part]
        text = text[:userinfo.start(2)] + text[userinfo.end():]
    text = text.rstrip("/")
    base, _, fragment = text.partition("#")
    head, has_query, query = base.partition("?")
    scheme = SCHEME.match(head)
    prefix = scheme.group() if scheme else ""
    host, has_path, path = head[len(prefix):].partition("/")
    distinct: list[str] = []
    segments = path.split("/") if has_path else []
    named = False  # the segment before was named like a key
    for index, segment in enumerate(segments):
        if segment and segment != MASK and (named or is_credential(segment)):
            credentials.append(unquote(segment))
            segments[index] = MASK
        elif segment and segment != MASK and looks_random(unquote(segment)):
            distinct.append(segment)
            segments[index] = MASK
        named = segments[index] == segment and unquote(segment).lower() in KEY_WORDS
    items = []
    for item in query.split("&") if query else []:
        name, has_value, value = item.partition("=")
        if not has_value:  # a bare ?<value>
            name, value = "", name
        if value in ("", MASK):
            items.append(item)
            continue
        if name and (is_credential(name) or looks_random(unquote(name))):  # a key sent as a parameter's name
            credentials.append(unquote(name))
            name = ""
        if not name or _names_key(unquote(name)) or is_credential(value):
            credentials.append(unquote(value))
        else:
            distinct.append(item)
        items.append(f"{name}={MASK}" if name else MASK)
    if not credentials and not distinct and not fragment:  # nothing to hide: as shown before (drafts stay fresh)
        return text, ()
    shown = prefix + host + ("/" + "/".join(segments) if has_path else "")
    shown = shown.rstrip("/") + ("?" + "&".join(items) if has_query else "")
    if distinct:  # two deployments on one host must not share cached reviews: a digest of what tells them apart
        digest = hashlib.sha256(json.dumps([shown, distinct]).encode()).hexdigest()[:8]
        shown += f"#masked-{digest}"
    elif FINGERPRINT.match(fragment):  # shown already, with its digest
        shown += f"#{fragment}"
    return shown, tuple(credentials)


def _known() -> tuple[str, ...]:
    return tuple(value for name in SECRET_VARIABLES if len(value := os.environ.get(name, "")) >= SHORTEST)


def public_url(url: str) -> str:
    """``url`` as it may be printed, logged, recorded in a sidecar and put in a cache key: scheme, host, port and
    path, without user or password, with every credential in the path or query string shown as ``***``, and
    without a trailing slash. ``http://h/v1/key/sk-...?api_key=sk-...&api-version=2`` is
    ``http://h/v1/key/***?api_key=***&api-version=***#masked-1a2b3c4d``: the fingerprint (a digest of what was
    hidden that is not a credential) keeps two deployments apart; a new key, the same server, keeps its cache.
    A URL with nothing to hide is shown as it is, so drafts made before this stay fresh. Applied again, it changes
    nothing (``stale`` plans from the recorded form)."""
    return _split(url, _known())[0]


def _named_values() -> Iterator[tuple[str, str]]:
    """(label, value) for every secret value this process knows of."""
    for name in SECRET_VARIABLES:
        yield name, os.environ.get(name, "")
    for name in URL_VARIABLES:
        for value in _split(os.environ.get(name, ""), _known())[1]:
            yield f"key in {name}", value


def _forms(value: str) -> list[str]:
    """The ways a secret can be written: as is, JSON-escaped (the run log, a JSON reply), repr-escaped,
    percent-encoded (a URL)."""
    forms = [value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1], repr(value)[1:-1],
             quote(value, safe=""), quote(value)]
    return sorted(set(forms), key=len, reverse=True)


def _hide(text: str, mark: str, shape: str) -> str:
    for name, value in _named_values():
        if len(value) < SHORTEST:
            continue
        forms = _forms(value)
        for form in forms:
            text = text.replace(form, mark.format(name))
        text = _redact_prefixes(text, [form for form in forms if len(form) > SECRET_PREFIX], mark.format(name))
    return HF_TOKEN_SHAPE.sub(mark.format(shape), text) if "hf_" in text else text


def redact(text: str) -> str:
    """Belt and braces: no secret leaves the process in a message or a log line, whole, escaped, or cut short by a
    length limit (any prefix of SECRET_PREFIX characters or more)."""
    return _hide(text, "<{}>", "hf_ token")


def scrub(text: str) -> str:
    """What a model or a server sent us, with every secret in it removed: it may echo a key it was sent."""
    return _hide(text, "[{} removed]", "hf_ token")


def secret_in(text: str) -> str | None:
    """What secret ``text`` holds (``the value of HF_TOKEN``, ``a Hugging Face token``), or None."""
    for name, value in _named_values():
        if len(value) >= SHORTEST and value in text:
            return f"the value of {name}" if name in SECRET_VARIABLES else f"the {name}"
    return "a Hugging Face token (hf_...)" if HF_TOKEN_SHAPE.search(text) else None


def _redact_prefixes(text: str, secrets: list[str], label: str) -> str:
    """Replace every run of text that is a prefix of one of ``secrets`` (the forms of one secret) at least
    SECRET_PREFIX characters long, the longest such run where the forms overlap."""
    heads = {secret[:SECRET_PREFIX] for secret in secrets}
    if not secrets or not any(head in text for head in heads):
        return text
    out, start, at = [], 0, 0
    while at <= len(text) - SECRET_PREFIX:
        end = at
        for secret in secrets:
            if text.startswith(secret[:SECRET_PREFIX], at):
                stop = at + SECRET_PREFIX
                while stop < len(text) and stop - at < len(secret) and text[stop] == secret[stop - at]:
                    stop += 1
                end = max(end, stop)
        if end > at:
            out += [text[start:at], label]
            start = at = end
        else:
            at += 1
    return "".join(out) + text[start:]
