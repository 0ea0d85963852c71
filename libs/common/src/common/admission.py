"""Admission control: a bound on the requests one worker process serves at once.

Beyond the bound a request is answered at once with a 503 problem and ``Retry-After`` instead of
waiting in the event loop for a turn it may never get before the client's timeout. Health and
metrics paths are exempt, so probes and scrapes still answer while the service sheds load.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from common.errors import ServiceUnavailable, problem_response
from common.metrics import HTTP_REQUESTS_REJECTED

#: Seconds a rejected client is asked to wait: one is enough for a burst to drain.
RETRY_AFTER_SECONDS = 1
EXEMPT_PATHS = ("/health/live", "/health/ready", "/metrics")


class Admission:
    """Counts requests in flight in this process and turns away those beyond ``limit``.

    The request frame (``common.web.RequestFrame``) keeps the count and asks :meth:`refuse`.
    """

    def __init__(self, service: str, limit: int, exempt: Iterable[str] = EXEMPT_PATHS) -> None:
        self.limit = limit
        self.in_flight = 0
        #: Paths served whatever the load; a long-lived stream belongs here too, or it holds a
        #: slot for as long as its client stays connected.
        self.exempt = set(exempt)
        self._rejected = HTTP_REQUESTS_REJECTED.labels(service)
        self._overloaded = ServiceUnavailable(
            "The service is at capacity; retry shortly.",
            slug="overloaded",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    def refuse(self, request: web.Request) -> web.Response:
        """The immediate 503 for a request beyond the bound: no log line, no histogram."""
        self._rejected.inc()
        error = self._overloaded
        return problem_response(
            request, error.status, error.detail, slug=error.slug, headers=error.headers
        )


ADMISSION = web.AppKey("admission", Admission)
