"""The longest duration anything accepts: a year, refused above it with a reason rather
than overflowing ``timedelta`` wherever the value is used."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scalerd.core.durations import MAX_DURATION, parse_duration


@pytest.mark.parametrize("text", ["366d", "8784h", "P366D", "PT31622400S"])
def test_a_year_is_accepted(text: str) -> None:
    assert parse_duration(text) == MAX_DURATION == timedelta(days=366)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("367d", id="just above"),
        pytest.param("999999999d", id="overflows timedelta"),
        pytest.param("P99999999D", id="ISO, overflows timedelta"),
        pytest.param("9" * 30 + "s", id="30-digit seconds"),
        pytest.param("9" * 400 + "s", id="infinite as a float"),
        pytest.param("PT" + "9" * 400 + "H", id="ISO, infinite as a float"),
    ],
)
def test_longer_is_a_value_error_naming_the_maximum(text: str) -> None:
    with pytest.raises(ValueError, match="longer than the maximum of 366d") as raised:
        parse_duration(text)
    assert len(str(raised.value)) < 120  # the text is shortened, not echoed whole
