"""The live feed: alert changes in a Redis stream, read by every process's SSE clients.

A Redis stream (not pub/sub) because its entry ids double as SSE event ids: a client that
reconnects with ``Last-Event-ID`` resumes right after what it saw, whichever worker it reaches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def valid_stream_id(value: str) -> bool:
    return _STREAM_ID.match(value) is not None


@dataclass(frozen=True)
class FeedEntry:
    id: str
    kind: str
    data: bytes


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
