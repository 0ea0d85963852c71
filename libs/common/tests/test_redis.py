"""ScriptPipe on the real Redis: pipelined replies in order, script reloads, errors, lost links."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from common.redis import ScriptPipe, create_redis
from common.testing import TEST_REDIS_URL, TcpProxy

ECHO_AND_COUNT = """
local n = redis.call('INCR', KEYS[1])
return {ARGV[1], n}
"""


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = create_redis(TEST_REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def pipe(redis: Redis) -> AsyncIterator[ScriptPipe]:
    script = ScriptPipe(redis, ECHO_AND_COUNT)
    yield script
    await script.aclose()


async def test_concurrent_calls_each_get_their_own_reply(
    pipe: ScriptPipe, redis: Redis, redis_prefix: str
) -> None:
    key = f"{redis_prefix}counter"

    replies = await asyncio.gather(*(pipe([key], [f"call-{n}"]) for n in range(300)))

    assert [echo for echo, _ in replies] == [f"call-{n}".encode() for n in range(300)]
    assert sorted(count for _, count in replies) == list(range(1, 301))
    assert await redis.get(key) == b"300"


async def test_a_script_redis_does_not_know_is_sent_in_full(
    pipe: ScriptPipe, redis_prefix: str
) -> None:
    real_sha = pipe.sha
    pipe.sha = b"0" * 40  # what a restarted Redis, with an empty script cache, answers for

    assert await pipe([f"{redis_prefix}k"], ["x"]) == [b"x", 1]
    pipe.sha = real_sha
    assert await pipe([f"{redis_prefix}k"], ["y"]) == [b"y", 2]


async def test_an_error_reply_raises_and_the_connection_keeps_working(
    redis: Redis, redis_prefix: str
) -> None:
    failing = ScriptPipe(redis, "return redis.error_reply('limit misconfigured')")
    working = ScriptPipe(redis, ECHO_AND_COUNT)
    try:
        with pytest.raises(ResponseError, match="limit misconfigured"):
            await failing([], [])
        assert await working([f"{redis_prefix}k"], ["ok"]) == [b"ok", 1]
    finally:
        await failing.aclose()
        await working.aclose()


async def test_a_lost_connection_fails_the_calls_in_flight_and_the_next_call_reconnects(
    redis_prefix: str,
) -> None:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    client = create_redis(f"redis://127.0.0.1:{proxy.port}/0")
    # A script slow enough to still be running when the link is cut.
    slow = ScriptPipe(
        client,
        "local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] "
        "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - s > 200000 return 1",
    )
    try:
        in_flight = asyncio.create_task(slow([], []))
        await asyncio.sleep(0.05)
        await proxy.cut()
        with pytest.raises(ConnectionError):
            await in_flight
        with pytest.raises(ConnectionRefusedError):
            await slow([], [])  # the proxy refuses connections now
        await proxy.restore()
        assert await slow([], []) == 1
    finally:
        await slow.aclose()
        await client.aclose()
        await proxy.cut()


async def test_a_server_that_never_answers_times_out_and_drops_the_connection() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = create_redis(f"redis://127.0.0.1:{port}/0")
    pipe = ScriptPipe(client, ECHO_AND_COUNT, timeout=0.2)
    try:
        for _ in range(2):
            with pytest.raises(TimeoutError):
                await pipe(["k"], ["x"])
        assert len(accepted) == 2  # a fresh connection after each timeout
    finally:
        await pipe.aclose()
        await client.aclose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_the_database_in_the_url_is_selected(redis_prefix: str) -> None:
    other_db = create_redis("redis://127.0.0.1:6379/3")
    pipe = ScriptPipe(other_db, ECHO_AND_COUNT)
    key = f"{redis_prefix}in-db-3"
    try:
        await pipe([key], ["x"])
        assert await other_db.get(key) == b"1"
    finally:
        await other_db.delete(key)
        await pipe.aclose()
        await other_db.aclose()


async def test_a_refused_login_is_a_connection_error() -> None:
    client = create_redis("redis://:not-the-password@127.0.0.1:6379/0")
    pipe = ScriptPipe(client, ECHO_AND_COUNT)
    try:
        with pytest.raises(ConnectionError, match="refused the connection"):
            await pipe(["k"], ["x"])
    finally:
        await pipe.aclose()
        await client.aclose()
