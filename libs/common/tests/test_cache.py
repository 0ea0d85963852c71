"""The generation-keyed read cache on the real Redis, and how it degrades when Redis is gone."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from common.cache import ReadCache
from common.redis import create_redis
from common.testing import TEST_REDIS_URL, TcpProxy

SERVICE = "cache-test"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = create_redis(TEST_REDIS_URL)
    yield client
    await client.aclose()


class Loader:
    """A ``load`` callable that counts its calls and returns the current value of the source."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        return self.value


def counts(namespace: str) -> tuple[float, float]:
    labels = {"service": SERVICE, "cache": namespace}
    return (
        REGISTRY.get_sample_value("cache_hits_total", labels) or 0.0,
        REGISTRY.get_sample_value("cache_misses_total", labels) or 0.0,
    )


OPEN_CACHES: list[ReadCache] = []


@pytest.fixture(autouse=True)
async def close_caches() -> AsyncIterator[None]:
    """Each cache holds a lookup connection of its own; close them on the test's loop."""
    yield
    while OPEN_CACHES:
        await OPEN_CACHES.pop().aclose()


def make_cache(redis: Redis, prefix: str, namespace: str = "things", ttl: int = 60) -> ReadCache:
    cache = ReadCache(redis, prefix=prefix, namespace=namespace, service=SERVICE, ttl_seconds=ttl)
    OPEN_CACHES.append(cache)
    return cache


async def test_first_read_misses_and_later_reads_hit(redis: Redis, redis_prefix: str) -> None:
    cache = make_cache(redis, redis_prefix, "hits")
    load = Loader({"id": 1, "tags": ["a", "b"]})
    hits, misses = counts("hits")

    first = await cache.get_or_load("k", load)
    assert counts("hits") == (hits, misses + 1)
    second = await cache.get_or_load("k", load)
    third = await cache.get_or_load("k", load)

    assert first == second == third == {"id": 1, "tags": ["a", "b"]}
    assert load.calls == 1
    assert counts("hits") == (hits + 2, misses + 1)


async def test_invalidate_makes_the_next_read_a_miss_with_the_fresh_value(
    redis: Redis, redis_prefix: str
) -> None:
    cache = make_cache(redis, redis_prefix, "invalidate")
    load = Loader({"name": "old"})
    await cache.get_or_load("k", load)
    hits, misses = counts("invalidate")

    load.value = {"name": "new"}
    await cache.invalidate()

    assert await cache.get_or_load("k", load) == {"name": "new"}
    assert counts("invalidate") == (hits, misses + 1)
    assert await cache.get_or_load("k", load) == {"name": "new"}
    assert counts("invalidate") == (hits + 1, misses + 1)
    assert load.calls == 2


async def test_invalidation_is_per_namespace(redis: Redis, redis_prefix: str) -> None:
    costs, alerts = (
        make_cache(redis, redis_prefix, "costs"),
        make_cache(redis, redis_prefix, "alerts"),
    )
    cost_load, alert_load = Loader([1]), Loader([2])
    await costs.get_or_load("k", cost_load)
    await alerts.get_or_load("k", alert_load)

    await costs.invalidate()
    await costs.get_or_load("k", cost_load)
    await alerts.get_or_load("k", alert_load)

    assert (cost_load.calls, alert_load.calls) == (2, 1)


async def test_entries_are_stored_under_the_prefix_with_the_ttl(
    redis: Redis, redis_prefix: str
) -> None:
    cache = make_cache(redis, redis_prefix, "ttl", ttl=30)

    await cache.get_or_load("k", Loader("v"))

    keys = [k async for k in redis.scan_iter(match=f"{redis_prefix}*")]
    assert keys == [f"{redis_prefix}cache:ttl:0:k".encode()]
    assert 0 < await redis.ttl(keys[0]) <= 30
    assert await redis.get(keys[0]) == b'"v"'


async def test_rendered_bodies_are_served_byte_for_byte(redis: Redis, redis_prefix: str) -> None:
    cache = make_cache(redis, redis_prefix, "bytes")
    body = orjson.dumps({"success": True, "data": [1, 2]})
    calls = 0

    async def render() -> bytes:
        nonlocal calls
        calls += 1
        return body

    assert await cache.get_or_load_bytes("page-1", render) == body
    assert await cache.get_or_load_bytes("page-1", render) == body
    assert calls == 1


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        (("list", {"a": 1, "b": 2}), ("list", {"b": 2, "a": 1}), True),
        (("list", 20, 0), ("list", 20, 0), True),
        (("list", 20, 0), ("list", 0, 20), False),
        (("list", "1"), ("list", 1), False),
    ],
)
def test_keys_depend_on_parameter_values_not_dict_order(
    left: tuple[Any, ...], right: tuple[Any, ...], same: bool
) -> None:
    key = ReadCache.key_for(*left)

    assert len(key) == 32
    assert (key == ReadCache.key_for(*right)) is same


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_unreachable_redis_degrades_to_load_without_raising() -> None:
    redis = create_redis(f"redis://127.0.0.1:{closed_port()}/0")
    cache = make_cache(redis, "unused:", "down")
    load = Loader({"from": "postgres"})
    hits, misses = counts("down")
    started = time.monotonic()
    try:
        assert await cache.get_or_load("k", load) == {"from": "postgres"}
        assert await cache.get_or_load("k", load) == {"from": "postgres"}
        await cache.invalidate()
    finally:
        await redis.aclose()

    assert load.calls == 2
    assert counts("down") == (hits, misses + 2)
    assert time.monotonic() - started < 5


async def test_a_failed_store_still_returns_the_loaded_value(redis_prefix: str) -> None:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    redis = create_redis(f"redis://127.0.0.1:{proxy.port}/0")
    cache = make_cache(redis, redis_prefix, "store")

    async def load_while_redis_goes_away() -> dict[str, int]:
        await proxy.cut()
        return {"n": 1}

    try:
        assert await cache.get_or_load("k", load_while_redis_goes_away) == {"n": 1}
    finally:
        await redis.aclose()
        await proxy.cut()

    direct = create_redis(TEST_REDIS_URL)
    try:
        assert [k async for k in direct.scan_iter(match=f"{redis_prefix}*")] == []
    finally:
        await direct.aclose()


async def test_a_write_by_another_worker_is_seen_by_the_next_read(
    redis: Redis, redis_prefix: str
) -> None:
    """Each worker keeps hot entries in its own memory; the generation in Redis still rules."""
    mine, theirs = make_cache(redis, redis_prefix, "two"), make_cache(redis, redis_prefix, "two")
    load = Loader({"name": "old"})
    assert await mine.get_or_load("k", load) == {"name": "old"}
    assert await mine.get_or_load("k", load) == {"name": "old"}  # from this worker's memory

    load.value = {"name": "new"}
    await theirs.invalidate()

    assert await mine.get_or_load("k", load) == {"name": "new"}
    assert load.calls == 2


async def test_a_read_never_joins_a_generation_question_already_on_its_way(
    redis: Redis, redis_prefix: str
) -> None:
    """The question of an earlier read may reach Redis before a write; a read that began after
    the write finished must ask again, not take that answer."""
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    slow_redis = create_redis(f"redis://127.0.0.1:{proxy.port}/0")
    mine = make_cache(slow_redis, redis_prefix, "race")
    theirs = make_cache(redis, redis_prefix, "race")
    load = Loader("old")
    try:
        assert await mine.get_or_load("k", load) == "old"
        proxy.delay = 0.3  # each way: a question takes 0.3 s to Redis and 0.3 s back
        earlier = asyncio.create_task(mine.get_or_load("k", load))
        await asyncio.sleep(0.45)  # Redis has answered it; the answer is still on its way
        load.value = "new"
        await theirs.invalidate()
        assert not earlier.done()

        assert await mine.get_or_load("k", load) == "new"
        assert await earlier == "old"  # it began before the write: either value was right
    finally:
        await slow_redis.aclose()
        await proxy.cut()


class CountingPipe:
    """Wraps a cache's generation question to count how often it reaches Redis."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.calls = 0

    async def __call__(self, keys: list[str], args: list[str]) -> Any:
        self.calls += 1
        return await self.pipe(keys, args)

    async def aclose(self) -> None:
        await self.pipe.aclose()


async def test_concurrent_reads_share_one_generation_question(
    redis: Redis, redis_prefix: str
) -> None:
    cache = make_cache(redis, redis_prefix, "shared")
    load = Loader([1, 2, 3])
    await cache.get_or_load("k", load)
    counting = cache._generation = CountingPipe(cache._generation)  # type: ignore[assignment]
    hits, _ = counts("shared")

    values = await asyncio.gather(*(cache.get_or_load("k", load) for _ in range(50)))

    assert values == [[1, 2, 3]] * 50
    assert counting.calls == 1
    assert counts("shared")[0] == hits + 50
    assert load.calls == 1


async def test_a_reader_that_gives_up_leaves_the_others_their_answer(
    redis: Redis, redis_prefix: str
) -> None:
    cache = make_cache(redis, redis_prefix, "cancel")
    await cache.get_or_load("k", Loader("v"))
    impatient = asyncio.create_task(cache.get_or_load("k", Loader("v")))
    patient = asyncio.create_task(cache.get_or_load("k", Loader("v")))
    await asyncio.sleep(0)
    impatient.cancel()

    assert await patient == "v"
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_entries_kept_in_memory_never_outlive_their_copy_in_redis(
    redis: Redis, redis_prefix: str
) -> None:
    cache = make_cache(redis, redis_prefix, "short", ttl=1)
    load = Loader("v")
    await cache.get_or_load("k", load)
    await cache.get_or_load("k", load)
    assert load.calls == 1

    await asyncio.sleep(1.1)  # Redis dropped the entry; this worker's copy must go with it

    await cache.get_or_load("k", load)
    assert load.calls == 2


async def test_memory_kept_per_worker_is_bounded_in_bytes(redis: Redis, redis_prefix: str) -> None:
    cache = ReadCache(
        redis, prefix=redis_prefix, namespace="bounded", service=SERVICE, local_bytes=8000
    )
    OPEN_CACHES.append(cache)
    body = b"x" * 900  # within an eighth of the budget: kept in memory

    async def render() -> bytes:
        return body

    for n in range(40):
        assert await cache.get_or_load_bytes(f"k{n}", render) == body

    assert cache._local_size <= 8000
    assert list(cache._local)[-1] == "k39"  # the newest stay, the oldest went
    assert len(cache._local) == 8


# --- the tag nginx's edge keeps a body by -------------------------------------------------------


async def test_a_body_is_tagged_with_the_generation_it_belongs_to(
    redis: Redis, redis_prefix: str
) -> None:
    cache = make_cache(redis, redis_prefix, "tagged", ttl=60)
    generation_key = f"{redis_prefix}cache:tagged:generation"

    async def render() -> bytes:
        return b'{"n":1}'

    # A namespace never written has no generation to check against: nobody else may keep it.
    never = await cache.get_or_load_cached("k", render)
    assert (never.body, never.tag) == (b'{"n":1}', None)
    await cache.invalidate()
    loaded = await cache.get_or_load_cached("k", render)  # a miss, loaded and stored
    body, tag = loaded.body, loaded.tag
    assert body == b'{"n":1}'
    assert tag is not None
    key, generation, seconds = tag.split(" ")
    assert (key, generation) == (generation_key, "1")
    assert 59 <= int(seconds) <= 60
    again = (await cache.get_or_load_cached("k", render)).tag  # from memory: what is left
    assert again is not None
    assert again.rsplit(" ", 1)[0] == f"{generation_key} 1"
    assert 58 <= int(again.rsplit(" ", 1)[1]) <= int(seconds)
    await cache.invalidate()
    assert (await cache.get_or_load_cached("k", render)).tag.split(" ")[1] == "2"  # type: ignore[union-attr]


async def test_a_body_from_redis_may_be_kept_only_as_long_as_its_copy_there(
    redis: Redis, redis_prefix: str
) -> None:
    writer = make_cache(redis, redis_prefix, "tag-ttl", ttl=60)
    await writer.invalidate()

    async def render() -> bytes:
        return b"[]"

    await writer.get_or_load_cached("k", render)
    await redis.expire(f"{redis_prefix}cache:tag-ttl:1:k", 7)
    reader = make_cache(redis, redis_prefix, "tag-ttl", ttl=60)  # another worker: no memory
    tag = (await reader.get_or_load_cached("k", render)).tag
    assert tag is not None
    assert 6 <= int(tag.split(" ")[2]) <= 7


async def test_a_body_is_never_tagged_when_redis_cannot_say_its_generation() -> None:
    redis = create_redis(f"redis://127.0.0.1:{closed_port()}/0")
    cache = make_cache(redis, "unused:", "tag-down")

    async def render() -> bytes:
        return b"[]"

    try:
        down = await cache.get_or_load_cached("k", render)
        assert (down.body, down.tag) == (b"[]", None)
    finally:
        await redis.aclose()
