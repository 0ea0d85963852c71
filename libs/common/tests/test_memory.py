"""The memory leak detector: a real leak in this process is reported within its window, a steady
process and one-off spikes are not, and the report names where the memory went."""

from __future__ import annotations

import json
import mmap
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from common.config import ServiceSettings
from common.memory import MIB, MemoryLeakDetector, MemorySettings, judge, read_rss
from common.testing import make_settings
from common.web import create_base_app

WINDOW = 8
MINUTE = 60.0


class Clock:
    """Sampling time that moves a minute per sample: no sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def detector(service: str) -> tuple[MemoryLeakDetector, Clock]:
    clock = Clock()
    settings = MemorySettings(window=WINDOW, slope_bytes_per_hour=32 * MIB)
    return MemoryLeakDetector(service, settings, clock=clock), clock


@pytest.fixture(autouse=True)
def _no_tracing_left() -> Iterator[None]:
    yield
    tracemalloc.stop()


def metric(name: str, service: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"service": service})


def test_a_leak_in_this_process_is_reported_within_its_window(log_lines: list[str]) -> None:
    leak: list[mmap.mmap | bytearray] = []
    found, clock = detector("leaky")
    verdicts = []
    for _ in range(WINDOW):
        # Pages of their own, each written: resident at once, whatever the allocator has kept
        # from earlier tests in this process (a bytearray may reuse freed heap and not grow RSS).
        pages = mmap.mmap(-1, 6 * MIB)
        pages.write(b"\1" * (6 * MIB))
        leak.append(pages)
        verdicts.append(found.sample())
        clock.now += MINUTE
    assert [v.leaking for v in verdicts] == [False] * (WINDOW - 1) + [True]
    assert verdicts[-1].slope_bytes_per_hour is not None
    assert verdicts[-1].slope_bytes_per_hour > 300 * MIB  # 6 MiB a minute
    assert found.suspected
    assert found.warnings == 1
    assert metric("memory_leak_suspected", "leaky") == 1
    assert metric("memory_leak_warnings_total", "leaky") == 1
    [line] = [json.loads(x) for x in log_lines if "memory growing steadily" in x]
    assert line["level"] == "WARNING"
    assert line["growth_bytes_per_hour"] > 300 * MIB

    # Tracing starts on suspicion: further growth is traced to its line.
    assert tracemalloc.is_tracing()
    for _ in range(3):
        leak.append(bytearray(2 * MIB))
        found.sample()
        clock.now += MINUTE
    report = found.report()
    assert report["leak_suspected"]
    assert report["tracemalloc"]
    assert any(
        a["site"].endswith("test_memory.py:" + str(_leak_line())) and a["growth_bytes"] >= 6 * MIB
        for a in report["top_allocations"]
    ), report["top_allocations"]
    assert found.warnings == 1, "one warning per episode"

    leak.clear()
    for _ in range(WINDOW):
        found.sample()
        clock.now += MINUTE
    assert not found.suspected
    assert metric("memory_leak_suspected", "leaky") == 0


def _leak_line() -> int:
    source = Path(__file__).read_text().splitlines()
    return 1 + next(i for i, text in enumerate(source) if "leak.append(bytearray(2 * MIB))" in text)


def test_a_steady_process_raises_no_alarm() -> None:
    found, clock = detector("steady")
    for _ in range(3 * WINDOW):
        work = [bytearray(4 * MIB) for _ in range(2)]  # allocated and freed every round
        del work
        assert not found.sample().leaking
        clock.now += MINUTE
    assert found.warnings == 0
    assert metric("memory_leak_suspected", "steady") == 0
    assert not tracemalloc.is_tracing()


def series(values: list[int]) -> list[tuple[float, int]]:
    return [(i * MINUTE, v) for i, v in enumerate(values)]


def test_growth_must_be_sustained_not_one_spike_or_step() -> None:
    base = 100 * MIB
    threshold = 32 * MIB
    step = [base] * 5 + [base + 200 * MIB] * 3  # one allocation that stays
    spike = [base] * 4 + [base + 300 * MIB] + [base] * 3
    noisy_flat = [base + (MIB if i % 2 else -MIB) for i in range(WINDOW)]
    noisy_leak = [base + i * 4 * MIB + (MIB if i % 2 else 0) for i in range(WINDOW)]
    slow_leak = [base + i * 256 * 1024 for i in range(WINDOW)]  # 15 MiB an hour
    assert judge(series(step), WINDOW, threshold).slope_bytes_per_hour > threshold  # type: ignore[operator]
    assert not judge(series(step), WINDOW, threshold).leaking
    assert not judge(series(spike), WINDOW, threshold).leaking
    assert not judge(series(noisy_flat), WINDOW, threshold).leaking
    assert judge(series(noisy_leak), WINDOW, threshold).leaking
    assert not judge(series(slow_leak), WINDOW, threshold).leaking, "below the threshold"
    assert not judge(series(noisy_leak[:-1]), WINDOW, threshold).leaking, "window not full yet"


def test_rss_is_the_current_not_the_peak() -> None:
    # Fresh pages of their own, written so they are resident: a malloc'd block could reuse heap
    # pages a long test session already has resident, and then RSS would not move at all.
    before = read_rss()
    block = mmap.mmap(-1, 32 * MIB)
    block.write(b"\x01" * (32 * MIB))
    during = read_rss()
    block.close()
    assert during - before >= 30 * MIB
    assert read_rss() < during


async def test_every_service_serves_its_workers_report() -> None:
    app = create_base_app(make_settings(ServiceSettings, service_name="svc"))

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app.router.add_get("/hello", hello)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/health/memory")
        assert response.status == 200
        report = (await response.json())["data"]
    assert report["service"] == "svc"
    assert report["rss_bytes"] > 10 * MIB
    assert report["leak_suspected"] is False
    assert report["samples"][0]["rss_bytes"] == report["rss_bytes"]
