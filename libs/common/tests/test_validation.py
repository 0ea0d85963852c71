"""Shared query validation: what the database and date arithmetic cannot take is a 400."""

from __future__ import annotations

import traceback
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import AwareDatetime, BaseModel, ValidationError

from common.errors import BadRequest
from common.validation import (
    BIGINT_MAX,
    MAX_DAY,
    MIN_DAY,
    Day,
    Instant,
    RedactedValidationError,
    loggable,
    refuse_nul,
    refuse_unstorable,
)


class Window(BaseModel):
    day: Day | None = None
    at: Instant | None = None


class Page(BaseModel):
    offset: int = 0
    ids: list[int] = []
    since: AwareDatetime | None = None


@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31", "3000-01-01", "9999-12-31"])
def test_a_day_outside_the_bounds_is_invalid(day: str) -> None:
    with pytest.raises(ValidationError):
        Window.model_validate({"day": day})


@pytest.mark.parametrize("day", [MIN_DAY, MAX_DAY, date(2024, 2, 29)])
def test_a_day_inside_the_bounds_is_kept(day: date) -> None:
    assert Window.model_validate({"day": day.isoformat()}).day == day


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-01T01:30:00+01:30", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T00:00:00", datetime(2024, 1, 1, tzinfo=UTC)),  # no offset: UTC
    ],
)
def test_an_instant_is_in_utc(raw: str, expected: datetime) -> None:
    at = Window.model_validate({"at": raw}).at
    assert at == expected
    assert at is not None
    assert at.tzinfo is UTC


@pytest.mark.parametrize("raw", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_an_instant_without_a_utc_form_is_invalid_not_an_overflow(raw: str) -> None:
    with pytest.raises(ValidationError):
        Window.model_validate({"at": raw})


def test_nul_anywhere_in_the_query_is_refused() -> None:
    refuse_nul({"q": "web", "tag": ["a", "b"]})
    for values in ({"q": "w\x00b"}, {"tag": ["a", "b\x00"]}, {"q\x00": "x"}):
        with pytest.raises(BadRequest) as caught:
            refuse_nul(values)
        assert caught.value.status == 400


def test_integers_beyond_bigint_and_instants_without_utc_are_refused() -> None:
    assert refuse_unstorable(Page(offset=BIGINT_MAX)).offset == BIGINT_MAX
    far_east = timezone(timedelta(hours=14))
    cases = [
        Page(offset=BIGINT_MAX + 1),
        Page(ids=[1, -(2**64)]),
        Page(since=datetime(1, 1, 1, tzinfo=far_east)),
    ]
    for page in cases:
        with pytest.raises(BadRequest) as caught:
            refuse_unstorable(page)
        assert caught.value.status == 400


SECRET = "co_planted_secret_0123456789abcdef"


class Credentials(BaseModel):
    port: int
    key: int
    tags: dict[str, int] = {}


def refused(values: dict[str, object]) -> ValidationError:
    try:
        Credentials.model_validate(values)
    except ValidationError as exc:
        return exc
    raise AssertionError("valid")


def test_a_logged_validation_error_names_locations_and_types_never_inputs() -> None:
    original = refused({"port": SECRET, "key": f"{SECRET}!", "tags": {"a": SECRET}})
    assert SECRET in str(original)  # what a log line would have shown
    logged = loggable(original)
    assert isinstance(logged, RedactedValidationError)
    assert str(logged) == (
        "3 validation errors for Credentials: port [int_parsing]; key [int_parsing]; "
        "tags.a [int_parsing]"
    )
    assert logged.__traceback__ is original.__traceback__


def test_a_validation_error_in_an_exceptions_chain_is_redacted_in_the_chain() -> None:
    try:
        try:
            Credentials.model_validate({"port": SECRET, "key": 1})
        except ValidationError as exc:
            raise RuntimeError("event handling failed") from exc
    except RuntimeError as exc:
        outer = exc
    logged = loggable(outer)
    assert logged is outer
    assert isinstance(logged.__cause__, RedactedValidationError)
    assert SECRET not in "".join(traceback.format_exception(logged))


def test_an_exception_without_a_validation_error_is_logged_as_it_is() -> None:
    plain = KeyError("resource")
    assert loggable(plain) is plain
