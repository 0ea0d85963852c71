"""Concurrent large uploads on the public path (nginx -> gateway's decision -> costs) keep the
memory of every process bounded: nothing along the way holds a file, however many arrive at once.

Each upload is generated while it is sent (never stored), so the test itself holds none either.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from common.limits import UPLOAD_READ_TIMEOUT_SECONDS
from common.testing import RssSampler, ServiceProcess

from .conftest import public_path
from .test_upload_streaming import HEADERS, IMPORTS, PaddedFocusFile, stored, truncate_imports

MB = 1024**2
UPLOADS = 3
UPLOAD_BYTES = 200 * MB
# Each process may grow this much while 600 MB passes through it: buffers, not files.
RSS_GROWTH_LIMIT_MB = 60


def nginx_pids(conf_dir: Path) -> list[int]:
    """The nginx master (from its pid file) and its workers (its children, from /proc)."""
    master = int((conf_dir / "nginx" / "nginx.pid").read_text())
    workers = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue  # the process went away
        if fields.get("PPid", "").strip() == str(master):
            workers.append(int(status.parent.name))
    assert workers, "nginx has no workers"
    return [master, *workers]


async def upload(session: aiohttp.ClientSession, url: str, n: int) -> tuple[int, dict[str, object]]:
    body = PaddedFocusFile(UPLOAD_BYTES)
    async with session.post(
        f"{url}{IMPORTS}?filename=concurrent-{n}.csv",
        data=body.chunks(),
        headers={**HEADERS, "Content-Length": str(body.size)},
    ) as resp:
        return resp.status, await resp.json()


async def test_concurrent_large_uploads_keep_every_process_bounded(
    costs_service: ServiceProcess, costs_database: str, tmp_path: Path
) -> None:
    await truncate_imports(costs_database)
    rows = PaddedFocusFile(UPLOAD_BYTES).rows
    with public_path(costs_service, costs_database, tmp_path) as path:
        timeout = aiohttp.ClientTimeout(total=UPLOAD_READ_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"{path.url}/api/costs/daily", headers=HEADERS) as warm:
                assert warm.status == 200, await warm.text()  # a serving baseline everywhere
            pids = {
                "gateway": path.gateway.process.pid,  # type: ignore[union-attr]
                "costs": costs_service.process.pid,  # type: ignore[union-attr]
                **{f"nginx {pid}": pid for pid in nginx_pids(tmp_path)},
            }
            samplers = {name: RssSampler(pid) for name, pid in pids.items()}
            started = time.perf_counter()
            for sampler in samplers.values():
                sampler.__enter__()
            try:
                results = await asyncio.gather(
                    *(upload(session, path.url, n) for n in range(UPLOADS))
                )
            finally:
                for sampler in samplers.values():
                    sampler.__exit__()
            seconds = time.perf_counter() - started
    assert all(status == 201 for status, _ in results), results
    assert [r["data"]["rows_accepted"] for _, r in results] == [rows] * UPLOADS  # type: ignore[index]
    assert (await stored(costs_database))[2] == ["succeeded"] * UPLOADS
    growth = {name: s.peak - s.before for name, s in samplers.items()}
    report = ", ".join(
        f"{name} +{g:.1f} (peak {samplers[name].peak:.0f})" for name, g in growth.items()
    )
    print(f"\n{UPLOADS} x {UPLOAD_BYTES // MB} MiB at once in {seconds:.1f} s; RSS MiB: {report}")
    assert all(len(s.samples) >= 5 for s in samplers.values()), "RSS was not sampled"
    over = {name: round(g) for name, g in growth.items() if g > RSS_GROWTH_LIMIT_MB}
    assert not over, f"grew by more than {RSS_GROWTH_LIMIT_MB} MiB: {over}"
