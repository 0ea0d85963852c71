"""The client: one authenticated HTTP session to the public API, with a small namespace per area.

Every answer is the ``{"success", "data", "meta"}`` envelope; methods return its ``data`` (lists
are iterated page by page), and an error answer is raised as a typed :class:`ApiError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from cloudops_client.errors import ApiError, error_for

JsonObject = dict[str, Any]
Params = Mapping[str, str | int | float | bool | list[str] | None]
#: ``progress(sent_bytes, total_bytes)``, called after each chunk of an upload.
Progress = Callable[[int, int], None]

DEFAULT_URL = "http://127.0.0.1:8080"
MAX_PAGE = 100
UPLOAD_CHUNK = 1024 * 1024
MEDIA_BY_SUFFIX = {".gz": "application/gzip", ".csv": "text/csv"}


class CloudOps:
    """A client of the CloudOps API, with an API key or a bearer token.

    >>> with CloudOps("http://127.0.0.1:8080", api_key="ck_...") as api:
    ...     for resource in api.resources.list(status="running"):
    ...         print(resource["name"])
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if api_key and token:
            raise ValueError("give an API key or a bearer token, not both")
        headers = {"Accept": "application/json"}
        if api_key:
            headers["X-API-Key"] = api_key
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)
        self.resources = Resources(self)
        self.costs = Costs(self)
        self.alerts = Alerts(self)

    def __enter__(self) -> CloudOps:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """The raw response; an error status is raised as its :class:`ApiError`."""
        response = self._http.request(method, path, params=_query(params), json=json, **kwargs)
        if response.status_code >= 400:
            raise error_for(response)
        return response

    def call(
        self, method: str, path: str, *, params: Params | None = None, json: Any = None
    ) -> JsonObject:
        """The whole envelope (``data`` and ``meta``) of a JSON answer; ``{}`` for a 204."""
        response = self.request(method, path, params=params, json=json)
        if response.status_code == 204 or not response.content:
            return {}
        envelope: JsonObject = response.json()
        return envelope

    def data(
        self, method: str, path: str, *, params: Params | None = None, json: Any = None
    ) -> Any:
        return self.call(method, path, params=params, json=json).get("data")

    def paginate(
        self, path: str, params: Params | None = None, *, page_size: int = MAX_PAGE
    ) -> Iterator[JsonObject]:
        """Every item of a paged list, fetched ``page_size`` at a time as the iteration goes."""
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE}")
        offset = 0
        while True:
            page = self.call(
                "GET", path, params={**(params or {}), "limit": page_size, "offset": offset}
            )
            items: list[JsonObject] = page.get("data") or []
            yield from items
            offset += len(items)
            total = page.get("meta", {}).get("total", 0)
            if not items or offset >= total:
                return

    def token(self) -> str:
        """A short-lived bearer token for this client's credentials."""
        issued: JsonObject = self.data("POST", "/api/auth/token")
        return str(issued["access_token"])


def _query(params: Params | None) -> dict[str, Any] | None:
    """Drop unset filters; httpx sends a list as a repeated parameter."""
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None}


class Resources:
    """``/api/resources``: the inventory."""

    def __init__(self, api: CloudOps) -> None:
        self._api = api

    def list(self, *, page_size: int = MAX_PAGE, **filters: Any) -> Iterator[JsonObject]:
        """Filters as the API names them: status, type, provider, region, tag, q, sort."""
        return self._api.paginate("/api/resources", filters, page_size=page_size)

    def get(self, resource_id: str) -> JsonObject:
        found: JsonObject = self._api.data("GET", f"/api/resources/{resource_id}")
        return found

    def create(self, fields: Mapping[str, Any]) -> JsonObject:
        created: JsonObject = self._api.data("POST", "/api/resources", json=dict(fields))
        return created

    def update(self, resource_id: str, changes: Mapping[str, Any]) -> JsonObject:
        updated: JsonObject = self._api.data(
            "PATCH", f"/api/resources/{resource_id}", json=dict(changes)
        )
        return updated

    def delete(self, resource_id: str) -> None:
        self._api.request("DELETE", f"/api/resources/{resource_id}")


class Costs:
    """``/api/costs``: reports, budgets and FOCUS billing imports."""

    def __init__(self, api: CloudOps) -> None:
        self._api = api

    def daily(self, **query: Any) -> list[JsonObject]:
        items: list[JsonObject] = self._api.data("GET", "/api/costs/daily", params=query)
        return items

    def budgets(self, *, page_size: int = MAX_PAGE) -> Iterator[JsonObject]:
        return self._api.paginate("/api/costs/budgets", page_size=page_size)

    def import_focus(
        self,
        path: str | Path,
        *,
        progress: Progress | None = None,
        chunk_size: int = UPLOAD_CHUNK,
        timeout: float = 900.0,
    ) -> JsonObject:
        """Upload a FOCUS file (CSV, or gzip when it ends in ``.gz``) and return the import.

        The file is streamed, never read whole; ``progress(sent, total)`` follows each chunk.
        """
        path = Path(path)
        total = path.stat().st_size
        media = MEDIA_BY_SUFFIX.get(path.suffix.lower(), "text/csv")

        def chunks() -> Iterator[bytes]:
            sent = 0
            with path.open("rb") as f:
                while chunk := f.read(chunk_size):
                    yield chunk
                    sent += len(chunk)
                    if progress is not None:
                        progress(sent, total)

        response = self._api.request(
            "POST",
            "/api/costs/imports",
            params={"filename": path.name},
            content=chunks(),
            headers={"Content-Type": media, "Content-Length": str(total)},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )
        result: JsonObject = response.json()["data"]
        return result

    def get_import(self, import_id: str) -> JsonObject:
        found: JsonObject = self._api.data("GET", f"/api/costs/imports/{import_id}")
        return found


@dataclass(frozen=True)
class AlertEvent:
    """One event of the live alert stream."""

    id: str | None
    type: str
    data: Any


class Alerts:
    """``/api/alerts``: the feed, its live stream, acknowledging and resolving."""

    def __init__(self, api: CloudOps) -> None:
        self._api = api

    def list(self, *, page_size: int = MAX_PAGE, **filters: Any) -> Iterator[JsonObject]:
        """Filters as the API names them: severity, status, source, matcher, since, until."""
        return self._api.paginate("/api/alerts", filters, page_size=page_size)

    def acknowledge(self, alert_id: str, comment: str | None = None) -> JsonObject:
        body = {"comment": comment} if comment else {}
        found: JsonObject = self._api.data("POST", f"/api/alerts/{alert_id}/ack", json=body)
        return found

    def resolve(self, alert_id: str, comment: str | None = None) -> JsonObject:
        body = {"comment": comment} if comment else {}
        found: JsonObject = self._api.data("POST", f"/api/alerts/{alert_id}/resolve", json=body)
        return found

    def tail(self, *, last_event_id: str | None = None) -> Iterator[AlertEvent]:
        """Alert changes as they happen (Server-Sent Events), after ``last_event_id`` if given.

        The iteration runs until the caller stops it or the server ends the stream.
        """
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(10.0, read=None)
        with self._api._http.stream(
            "GET", "/api/alerts/stream", headers=headers, timeout=timeout
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise error_for(response)
            yield from _events(response.iter_lines())


def _events(lines: Iterator[str]) -> Iterator[AlertEvent]:
    """Server-Sent Events from text lines: ``id``/``event``/``data`` fields, a blank line ends
    an event; comments (keep-alives) and ``retry`` are skipped."""
    event_id: str | None = None
    kind = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    value: Any = json.loads(text)
                except ValueError:
                    value = text
                yield AlertEvent(event_id, kind, value)
            kind, data = "message", []
            continue
        name, _, value_text = line.partition(":")
        value_text = value_text.removeprefix(" ")
        if name == "id":
            event_id = value_text
        elif name == "event":
            kind = value_text
        elif name == "data":
            data.append(value_text)


__all__ = ["AlertEvent", "ApiError", "CloudOps"]
