"""``redact``: every secret shape scalerd may meet is masked, and nothing else is touched."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from scalerd.redact import redact, redact_event, redact_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;"
            "SharedAccessKey=AbC+dEf/GhI=;EntityPath=orders",
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;"
            "SharedAccessKey=***;EntityPath=orders",
            id="service-bus-connection-string",
        ),
        pytest.param(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=k3y+/==;EndpointSuffix=x",
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=***;EndpointSuffix=x",
            id="storage-account-key",
        ),
        pytest.param(
            "SharedAccessSignature sr=https%3A%2F%2Fns.servicebus.windows.net%2Fq"
            "&sig=abc%2B%3D&se=1700000000&skn=Root",
            "SharedAccessSignature ***",
            id="sas-token",
        ),
        pytest.param(
            "Endpoint=sb://ns/;SharedAccessSignature=SharedAccessSignature sr=x&sig=y;EntityPath=q",
            "Endpoint=sb://ns/;SharedAccessSignature=SharedAccessSignature ***;EntityPath=q",
            id="sas-token-in-connection-string",
        ),
        pytest.param(
            "403 on https://acct.blob.core.windows.net/c/b?sv=2022-11-02&ss=b&sig=AbCd%2F12%3D&se=2026-01-01",
            "403 on https://acct.blob.core.windows.net/c/b?sv=2022-11-02&ss=b&sig=***&se=2026-01-01",
            id="sas-url-sig",
        ),
        pytest.param(
            "Server=tcp:db.database.windows.net;User ID=app;Password=hunter2;Encrypt=True",
            "Server=tcp:db.database.windows.net;User ID=app;Password=***;Encrypt=True",
            id="sql-password",
        ),
        pytest.param(
            "host=db user=app pwd='s3 cret' sslmode=require",
            "host=db user=app pwd='***' sslmode=require",
            id="quoted-pwd",
        ),
        pytest.param("DB_PASSWORD=abc next", "DB_PASSWORD=*** next", id="prefixed-password"),
        pytest.param(
            "client_secret=abc123&grant_type=client_credentials",
            "client_secret=***&grant_type=client_credentials",
            id="client-secret",
        ),
        pytest.param(
            "{'password': 'x', 'user': 'u'}",
            "{'password': '***', 'user': 'u'}",
            id="dict-repr",
        ),
        pytest.param(
            "cannot connect to redis://default:p%40ss@cache.redis.cache.windows.net:6380/0",
            "cannot connect to redis://default:***@cache.redis.cache.windows.net:6380/0",
            id="redis-url-user-password",
        ),
        pytest.param(
            "rediss://:s3cret@cache:6380", "rediss://:***@cache:6380", id="rediss-password-only"
        ),
        pytest.param(
            "headers {'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln'}",
            "headers {'Authorization': 'Bearer ***'}",
            id="authorization-header-repr",
        ),
        pytest.param(
            "Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***", id="basic-auth"
        ),
        pytest.param(
            "401 with Bearer abcdefghijklmnopqrstuvwxyz0123",
            "401 with Bearer ***",
            id="bare-bearer-token",
        ),
        pytest.param(
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln in a query",
            "token *** in a query",
            id="bare-jwt",
        ),
    ],
)
def test_secrets_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("redis://cache:6379/0", id="url-without-userinfo"),
        pytest.param("http://host:8080/x?email=a@b.c", id="at-sign-in-query"),
        pytest.param("Bearer token expired", id="prose-after-bearer"),
        pytest.param("password authentication failed for user app", id="prose-password"),
        pytest.param("SharedAccessKeyName=RootManageSharedAccessKey", id="key-name-is-no-secret"),
        pytest.param("queue depth 42 for orders (sig unchanged)", id="word-sig"),
    ],
)
def test_text_without_secrets_is_unchanged(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Endpoint=sb://ns/;SharedAccessKey=abc=;SharedAccessSignature=SharedAccessSignature sr=x",
        "redis://u:p@h {'Authorization': 'Bearer abcdefghijklmnopqrstu'}",
    ],
)
def test_redact_is_idempotent(text: str) -> None:
    assert redact(redact(text)) == redact(text)


def test_redact_value_keeps_the_shape() -> None:
    value = {"error": "password=x", "tries": 3, "urls": ["redis://:p@h", ("sig=s",)], "ok": None}
    assert redact_value(value) == {
        "error": "password=***",
        "tries": 3,
        "urls": ["redis://:***@h", ("sig=***",)],
        "ok": None,
    }


def test_an_exception_value_becomes_its_redacted_text() -> None:
    assert redact_value(ValueError("bad AccountKey=abc")) == "ValueError: bad AccountKey=***"


def test_the_structlog_processor_redacts_every_value() -> None:
    captured: list[Any] = []

    def keep(logger: Any, method: str, event_dict: Any) -> Any:
        captured.append(dict(event_dict))
        raise structlog.DropEvent

    logger = structlog.wrap_logger(None, processors=[redact_event, keep])
    logger.warning("connect redis://:p@h failed", attempt=2, detail={"dsn": "pwd=x"})
    assert captured == [
        {"event": "connect redis://:***@h failed", "attempt": 2, "detail": {"dsn": "pwd=***"}}
    ]


def test_an_event_made_of_redacted_text_is_not_scanned_again() -> None:
    """The decision log line carries an audit record's fields, redacted where they were
    made; the marker saying so is dropped, and an event without it is scanned as ever."""
    from scalerd.redact import REDACTED, redact_event

    marked = redact_event(None, "info", {"event": "decision", "note": "sig=abc", REDACTED: True})
    assert marked == {"event": "decision", "note": "sig=abc"}
    assert redact_event(None, "info", {"event": "x", "note": "sig=abc"})["note"] == "sig=***"
