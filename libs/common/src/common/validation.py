"""Query-string validation every service shares: values PostgreSQL and date arithmetic can take.

A query value that validates but that the database or the calendar cannot hold would otherwise
fail later, as a 500: PostgreSQL's text refuses the NUL character, its ``bigint`` (and asyncpg's
encoder) ends at 2**63 - 1, and an aware timestamp at the calendar's edge (``0001-01-01T00:00+01``)
has no UTC form. :func:`refuse_nul` and :func:`refuse_unstorable` refuse these with a 400; the
shared query parser (``common.web.parse_query``) runs them for every model it parses.
Fields that feed day arithmetic (a window's end plus a day, a forecast's horizon) use :data:`Day`
and :data:`Instant`, bounded well inside the calendar.

A pydantic ``ValidationError``'s text quotes the input it refused (an event's data, a body's
secret); :func:`loggable` gives the exception a log line may show instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError

from common.errors import BadRequest

M = TypeVar("M", bound=BaseModel)

#: PostgreSQL ``bigint``: the widest integer a query parameter may carry to the database.
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
#: The days a :data:`Day` or :data:`Instant` may name: every billing date, with room for the
#: arithmetic on them (windows, look-backs, horizons) inside Python's and PostgreSQL's calendars.
MIN_DAY, MAX_DAY = date(1900, 1, 1), date(2999, 12, 31)
#: Why a text holding the NUL character is refused, wherever it comes from.
NUL_REFUSED = "must not contain the NUL character"
_DAY_RANGE = f"must be between {MIN_DAY.isoformat()} and {MAX_DAY.isoformat()}"


def _bounded_day(value: date) -> date:
    if not MIN_DAY <= value <= MAX_DAY:
        raise ValueError(_DAY_RANGE)
    return value


def _bounded_instant(value: datetime) -> datetime:
    """In UTC (a value without offset is taken as UTC), on a day within the bounds."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError(_DAY_RANGE) from None
    _bounded_day(utc.date())
    return utc


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NUL_REFUSED)
    return value


#: Add to a ``str`` field that reaches a text column from elsewhere than a JSON body (a CSV
#: cell, a query): PostgreSQL's text refuses NUL. JSON bodies never bring one to a model:
#: ``common.json_guard`` refuses a NUL anywhere in a body first, for every service.
NoNul = AfterValidator(_without_nul)
#: A calendar day between :data:`MIN_DAY` and :data:`MAX_DAY`.
Day = Annotated[date, AfterValidator(_bounded_day)]
#: A UTC timestamp on a day between :data:`MIN_DAY` and :data:`MAX_DAY`.
Instant = Annotated[datetime, AfterValidator(_bounded_instant)]


def in_day_range(value: datetime) -> bool:
    """Whether ``value`` (aware) falls on a day a :data:`Instant` accepts."""
    try:
        _bounded_instant(value)
    except ValueError:
        return False
    return True


def refuse_nul(values: Mapping[str, Any]) -> None:
    """400 if a query parameter's name or value (text, or a list of text) holds a NUL character.

    Called before the model validates, so no validator ever sees such a value.
    """
    errors = [
        {"field": name, "message": NUL_REFUSED}
        for name, value in values.items()
        if "\x00" in name or any("\x00" in v for v in _texts(value))
    ]
    if errors:
        raise BadRequest("Query parameters must not contain the NUL character.", errors=errors)


def refuse_unstorable(parsed: M) -> M:
    """``parsed`` if the database can take each of its values: else 400.

    Refused: an integer outside ``bigint`` and an aware timestamp that has no UTC form.
    """
    errors = [
        {"field": name, "message": message}
        for name in type(parsed).model_fields
        for message in _unstorable(getattr(parsed, name))
    ]
    if errors:
        raise BadRequest("Invalid query parameters.", errors=errors)
    return parsed


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def _unstorable(value: Any) -> list[str]:
    """Why ``value`` (or an item of it) cannot reach the database, if it cannot."""
    out = []
    for item in value if isinstance(value, list | tuple) else [value]:
        if isinstance(item, int) and not isinstance(item, bool):
            if not BIGINT_MIN <= item <= BIGINT_MAX:
                out.append(f"must be between {BIGINT_MIN} and {BIGINT_MAX}")
        elif isinstance(item, datetime) and item.tzinfo is not None:
            try:
                item.astimezone(UTC)
            except OverflowError:
                out.append("is outside the calendar once converted to UTC")
    return out


class RedactedValidationError(ValueError):
    """A pydantic ``ValidationError`` as a log line shows it: its title, each error's field
    location and type, never the input it refused."""


def loggable(exc: BaseException) -> BaseException:
    """``exc`` fit for a log line: a ``ValidationError`` in it, or in the chain of exceptions it
    was raised from or while handling, becomes a :class:`RedactedValidationError` with the same
    traceback (a chained one is replaced in the chain, where a traceback would print it).
    """
    seen: set[int] = set()

    def redacted(link: BaseException | None) -> BaseException | None:
        if link is None or id(link) in seen:
            return link
        seen.add(id(link))
        if isinstance(link, ValidationError):
            stand_in = RedactedValidationError(_summary(link)).with_traceback(link.__traceback__)
            stand_in.__cause__ = redacted(link.__cause__)
            stand_in.__context__ = redacted(link.__context__)
            stand_in.__suppress_context__ = link.__suppress_context__
            return stand_in
        cause, context = redacted(link.__cause__), redacted(link.__context__)
        if cause is not link.__cause__:
            link.__cause__ = cause
        if context is not link.__context__:
            link.__context__ = context
        return link

    return redacted(exc) or exc


def _summary(exc: ValidationError, shown: int = 20) -> str:
    """``2 validation errors for Budget: amount [decimal_parsing]; name [string_too_long]``.

    The error types only: a message may quote the input (a validator's own ``ValueError``).
    """
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    parts = [f"{'.'.join(map(str, e['loc'])) or '(root)'} [{e['type']}]" for e in errors[:shown]]
    more = f"; and {len(errors) - shown} more" if len(errors) > shown else ""
    count = exc.error_count()
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} for {exc.title}: {'; '.join(parts)}{more}"
