"""The live feed: alert changes in a Redis stream, read by every process's SSE clients.

A Redis stream (not pub/sub) because its entry ids double as SSE event ids: a client that
reconnects with ``Last-Event-ID`` resumes right after what it saw, whichever worker it reaches.
Open viewers are counted in Redis too, so the caps on them hold across workers and replicas.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis

_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def valid_stream_id(value: str) -> bool:
    return _STREAM_ID.match(value) is not None


@dataclass(frozen=True)
class FeedEntry:
    id: str
    kind: str
    data: bytes


#: A viewer's slot lasts this long unless renewed: slots of a process that died free themselves.
VIEWER_LEASE_SECONDS = 60
#: How often an open stream renews its slot.
VIEWER_RENEW_SECONDS = 20

STREAMS_OPEN = Gauge(
    "alerts_streams_open",
    "Live alert streams (Server-Sent Events) open now.",
    multiprocess_mode="livesum",
)
STREAMS_REFUSED = Counter(
    "alerts_streams_refused",
    "Live alert streams refused because a cap was reached (per principal or in total).",
    ["cap"],
)

# Drop lapsed leases, check both caps, take a slot: atomically, so concurrent opens cannot
# overshoot. KEYS: all viewers, this principal's viewers (sorted sets, score = lease end).
# ARGV: viewer id, lease seconds, per-principal cap, total cap. Returns "", "principal" or "total".
_ADMIT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 'principal' end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 'total' end
local lease = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[1])
  redis.call('EXPIRE', key, math.ceil(lease))
end
return ''
"""
_RENEW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1e6
local lease = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + lease, ARGV[1])
  redis.call('EXPIRE', key, math.ceil(lease))
end
return 1
"""


class Cap(StrEnum):
    PRINCIPAL = "principal"
    TOTAL = "total"


@dataclass(frozen=True)
class Viewer:
    """One open stream's slot."""

    id: str
    keys: tuple[str, str]


class AlertFeed:
    """Appends alert changes to, and reads them from, one capped Redis stream."""

    def __init__(self, redis: Redis, key: str, *, max_len: int) -> None:
        self.redis = redis
        self.key = key
        self.max_len = max_len

    async def publish_many(self, entries: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Append ``(kind, alert)`` entries in order, in one round trip."""
        if not entries:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for kind, alert in entries:
                pipe.xadd(
                    self.key,
                    {"kind": kind, "data": orjson.dumps(alert)},
                    maxlen=self.max_len,
                    approximate=True,
                )
            await pipe.execute()

    async def last_id(self) -> str:
        """The id of the newest entry (``0-0`` when empty): new clients start after it."""
        entries = await self.redis.xrevrange(self.key, count=1)
        if not entries:
            return "0-0"
        entry_id = entries[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def read_after(self, after: str, *, block_ms: int, count: int = 100) -> list[FeedEntry]:
        reply: Any = await self.redis.xread({self.key: after}, count=count, block=block_ms)
        out: list[FeedEntry] = []
        for _key, entries in reply or []:
            for entry_id, fields in entries:
                out.append(
                    FeedEntry(
                        id=entry_id.decode(), kind=fields[b"kind"].decode(), data=fields[b"data"]
                    )
                )
        return out


class StreamViewers:
    """Concurrent live streams, capped per principal and in total over every process."""

    def __init__(self, redis: Redis, key: str, *, per_principal: int, total: int) -> None:
        self.redis = redis
        self.key = key
        self.per_principal = per_principal
        self.total = total
        self._admit = redis.register_script(_ADMIT)
        self._renew = redis.register_script(_RENEW)

    async def admit(self, principal: str) -> Viewer | Cap:
        """A slot for a new stream of ``principal``, or the cap that refuses it."""
        viewer = Viewer(uuid.uuid4().hex, (self.key, f"{self.key}:{principal}"))
        args: list[str | int] = [viewer.id, VIEWER_LEASE_SECONDS, self.per_principal, self.total]
        refused = await self._admit(keys=list(viewer.keys), args=args)
        if refused:
            cap = Cap(refused.decode() if isinstance(refused, bytes) else str(refused))
            STREAMS_REFUSED.labels(cap.value).inc()
            return cap
        STREAMS_OPEN.inc()
        return viewer

    async def renew(self, viewer: Viewer) -> None:
        await self._renew(keys=list(viewer.keys), args=[viewer.id, VIEWER_LEASE_SECONDS])

    async def release(self, viewer: Viewer) -> None:
        STREAMS_OPEN.dec()
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in viewer.keys:
                pipe.zrem(key, viewer.id)
            await pipe.execute()
