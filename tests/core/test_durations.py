"""Durations as ops write them: the value of each unit (``ms`` is a thousandth of a
second, ``m`` a minute), what is refused, and the pydantic type config models use.
(``test_duration_bounds.py`` pins the maximum.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel, ValidationError

from scalerd.core.durations import Duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("250ms", timedelta(milliseconds=250), id="ms is a thousandth of a second"),
        pytest.param("1500ms", timedelta(seconds=1, milliseconds=500), id="ms above a second"),
        pytest.param("1s250ms", timedelta(seconds=1, milliseconds=250), id="ms after s"),
        pytest.param("30s", timedelta(seconds=30), id="seconds"),
        pytest.param("5m", timedelta(minutes=5), id="m is minutes, not ms"),
        pytest.param("1h30m", timedelta(minutes=90), id="compound"),
        pytest.param("1.5h", timedelta(minutes=90), id="fraction"),
        pytest.param("2d", timedelta(days=2), id="days"),
        pytest.param("PT5M", timedelta(minutes=5), id="ISO minutes"),
        pytest.param("P1DT2H", timedelta(days=1, hours=2), id="ISO days and hours"),
        pytest.param("PT0.5S", timedelta(milliseconds=500), id="ISO fraction"),
    ],
)
def test_value(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["300", "5 minutes", "P", "PT", "-5s", "5x", ""])
def test_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_duration(text)


class _Timed(BaseModel):
    every: Duration


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(300, "a duration needs a unit", id="bare number"),
        pytest.param(True, "a duration needs a unit", id="bool"),
        pytest.param("9999999999999999d", "longer than the maximum", id="huge string"),
    ],
)
def test_the_pydantic_type(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _Timed.model_validate({"every": value})
    assert _Timed.model_validate({"every": "250ms"}).every == timedelta(milliseconds=250)


def test_format_round_trips() -> None:
    for text in ("250ms", "30s", "5m", "1h30m", "2d"):
        assert format_duration(parse_duration(text)) == text
