"""Remove secrets from text before it reaches a log line, an audit record or an error.

Connection strings, SAS tokens and bearer tokens end up in exception messages more often
than anyone plans: an SDK echoes the connection string it could not parse, a URL with a
``sig=`` query is logged on a 403. Rather than trusting every call site, scalerd passes
every string it writes out through :func:`redact` (audit records on creation, log events
through the :func:`redact_event` structlog processor).

The patterns favour over-redaction: hiding a harmless word after ``Bearer`` costs nothing,
leaking a key costs a rotation. :func:`redact` is idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = [
    "MASK",
    "REDACTED",
    "forget_secrets",
    "redact",
    "redact_event",
    "redact_value",
    "register_secret",
]

MASK = "***"

# an event field saying that every value in the event was redacted where it was made (an
# audit record's fields), so the processor need not scan them again
REDACTED = "_redacted"

# Keys whose value is a secret in ``key=value`` connection strings, query strings and
# dict/JSON reprs. A prefix such as ``DB_`` or ``redis.`` is allowed on the generic names.
_PREFIXED_KEYS = (
    r"(?:[\w.-]*[_.-])?"
    r"(?:password|passwd|pwd|client_secret|secret|api_?key|access_token|refresh_token)"
)
_EXACT_KEYS = r"AccountKey|SharedAccessKey|sig"
_VALUE = r"""(?P<value>"[^"]*"|'[^']*'|[^\s;&,"'}]+)"""

# ``key=value`` anywhere, or ``"key": value`` when the key is quoted (a dict or JSON repr):
# an unquoted ``password: expired`` is prose, not a pair.
_KEY_VALUE = re.compile(
    rf"""(?P<lead>(?<![\w-])(?:{_EXACT_KEYS}|{_PREFIXED_KEYS})\s*=\s*"""
    rf"""|(?P<quote>["'])(?:{_EXACT_KEYS}|{_PREFIXED_KEYS})(?P=quote)\s*:\s*){_VALUE}""",
    re.IGNORECASE,
)

# Service Bus / Event Hubs SAS token, bare (``SharedAccessSignature sr=…&sig=…``) or as a
# connection-string key (``SharedAccessSignature=SharedAccessSignature sr=…``).
_SAS_TOKEN = re.compile(
    r"(?P<lead>SharedAccessSignature(?:\s*=\s*(?:SharedAccessSignature\s+)?|\s+))"
    r"(?P<value>[^\s;\"']+)",
    re.IGNORECASE,
)

# ``scheme://user:password@host``: keep the user, hide the password. ``?`` and ``#`` end
# the match so an ``@`` in a query string is not mistaken for userinfo.
_URL_USERINFO = re.compile(
    r"(?P<lead>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<value>[^/?#\s]+)(?=@)", re.IGNORECASE
)

# ``Authorization: <scheme> <credentials>`` in any scheme, and a bare bearer token long
# enough to be one (so "Bearer token expired" keeps its words).
_AUTHORIZATION = re.compile(
    r"(?P<lead>Authorization[\"']?\s*[:=]\s*[\"']?(?:[A-Za-z-]+\s+)?)(?P<value>[\w\-.~+/*]+=*)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<lead>\bBearer\s+)(?P<value>[\w\-.~+/]{16,}=*)", re.IGNORECASE)

# A JWT on its own (header.payload.signature, each base64url, header starting ``{"``).
_JWT = re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*")

_PATTERNS = (_SAS_TOKEN, _KEY_VALUE, _URL_USERINFO, _AUTHORIZATION, _BEARER)


def _mask(match: re.Match[str]) -> str:
    """Keep what introduces the secret and the quotes around it; mask the rest."""
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') and len(value) > 1 and value[-1] == value[0] else ""
    return f"{match.group('lead')}{quote}{MASK}{quote}"


# Secrets this process knows by value (the control token, the Redis password, every
# ``*_env`` variable the config names): hidden wherever they appear, whatever surrounds
# them, longest first so that one containing another is hidden whole.
_KNOWN: list[str] = []
# shorter values are too likely to be ordinary words
_MIN_KNOWN = 8


def register_secret(value: str | None) -> None:
    """Hide ``value`` literally from now on, in every string :func:`redact` sees."""
    if value and len(value) >= _MIN_KNOWN and value not in _KNOWN:
        _KNOWN.append(value)
        _KNOWN.sort(key=len, reverse=True)


def forget_secrets() -> None:
    """Forget every registered secret (a reloaded config, tests)."""
    _KNOWN.clear()


def redact(text: str) -> str:
    """``text`` with every secret value we recognise replaced by ``***``."""
    for secret in _KNOWN:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(_mask, text)
    return _JWT.sub(MASK, text)


def redact_value(value: Any) -> Any:
    """Redact every string inside a JSON-like value (dicts, lists, tuples), keeping its shape.

    An exception becomes its redacted ``Type: message`` text, since a renderer would
    otherwise print the unredacted message later.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_value(item) for item in value)
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return value


def redact_event(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact every value of the event.

    Put it after ``format_exc_info`` (so the rendered traceback is covered too) and before
    the renderer.
    """
    if event_dict.pop(REDACTED, False):  # made of text redacted already (a decision's)
        return event_dict
    for key, value in event_dict.items():
        event_dict[key] = redact_value(value)
    return event_dict
