"""A circuit breaker per upstream: stop calling a service that keeps failing, probe it later.

aiobreaker (last release 2021) predates the current asyncio API and has no failure-ratio window,
so this small breaker implements exactly what the gateway needs:
open after ``failure_threshold`` consecutive failures, or when at least ``window_min_requests``
calls in the last ``window_seconds`` failed at ``failure_ratio`` or more; after
``reset_seconds`` let one trial call through (half-open); close on its success.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum
from typing import Protocol

from prometheus_client import Counter, Gauge

BREAKER_STATE = Gauge(
    "breaker_state",
    "Circuit breaker state per upstream (0 closed, 1 open, 2 half-open).",
    ["service", "upstream"],
    multiprocess_mode="livemax",
)
BREAKER_TRANSITIONS = Counter(
    "breaker_transitions_total",
    "Circuit breaker state changes per upstream.",
    ["service", "upstream", "to"],
)
BREAKER_REJECTIONS = Counter(
    "breaker_rejections_total",
    "Requests answered 503 by an open breaker without calling the upstream.",
    ["service", "upstream"],
)


class Guard(Protocol):
    """What the proxy asks of a breaker."""

    def allow(self) -> bool: ...
    def retry_after(self) -> int: ...
    def record_success(self) -> None: ...
    def record_failure(self) -> None: ...


class Unguarded:
    """A guard that always allows and records nothing: for calls whose outcome says nothing
    about the upstream's health (a live stream lasts as long as its viewer, and ends when they
    leave), so they neither open the breaker nor are refused by it."""

    def allow(self) -> bool:
        return True

    def retry_after(self) -> int:
        return 1

    def record_success(self) -> None:
        pass

    def record_failure(self) -> None:
        pass


class BreakerState(IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    """Per-process breaker state for one upstream; not thread-safe (one event loop)."""

    def __init__(
        self,
        service: str,
        upstream: str,
        *,
        failure_threshold: int = 5,
        window_seconds: float = 10.0,
        window_min_requests: int = 20,
        failure_ratio: float = 0.5,
        reset_seconds: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.upstream = upstream
        self.failure_threshold = failure_threshold
        self.window_seconds = window_seconds
        self.window_min_requests = window_min_requests
        self.failure_ratio = failure_ratio
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self._window: deque[tuple[float, bool]] = deque()
        BREAKER_STATE.labels(service, upstream).set(0)

    @property
    def state(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.reset_seconds
        ):
            self._move(BreakerState.HALF_OPEN)
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    def retry_after(self) -> int:
        """Whole seconds until the breaker lets a trial call through (at least 1)."""
        remaining = self.reset_seconds - (self._clock() - self._opened_at)
        return max(1, int(remaining + 0.999))

    def allow(self) -> bool:
        """Whether a call may go to the upstream now; counts the rejection when not."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        BREAKER_REJECTIONS.labels(self.service, self.upstream).inc()
        return False

    def record_success(self) -> None:
        self._trial_in_flight = False
        self._consecutive_failures = 0
        self._remember(ok=True)
        if self._state is not BreakerState.CLOSED:
            self._window.clear()
            self._move(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._trial_in_flight = False
        self._consecutive_failures += 1
        self._remember(ok=False)
        if self._state is BreakerState.HALF_OPEN or self._should_open():
            self._opened_at = self._clock()
            self._move(BreakerState.OPEN)

    def _remember(self, *, ok: bool) -> None:
        now = self._clock()
        self._window.append((now, ok))
        while self._window and now - self._window[0][0] > self.window_seconds:
            self._window.popleft()

    def _should_open(self) -> bool:
        if self._state is BreakerState.OPEN:
            return False
        if self._consecutive_failures >= self.failure_threshold:
            return True
        total = len(self._window)
        failures = sum(1 for _, ok in self._window if not ok)
        return total >= self.window_min_requests and failures / total >= self.failure_ratio

    def _move(self, state: BreakerState) -> None:
        if state is self._state:
            return
        self._state = state
        BREAKER_STATE.labels(self.service, self.upstream).set(int(state))
        BREAKER_TRANSITIONS.labels(self.service, self.upstream, state.name.lower()).inc()
