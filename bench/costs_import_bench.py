"""FOCUS import of a generated 1,000,000-row file: rows/s and peak RSS, beside two baselines.

Same run, same file: (1) parsing it with the ``csv`` module alone, (2) ``COPY`` of pre-parsed rows
(asyncpg ``copy_records_to_table``, the rows converted before the clock starts; a sample, so the
pre-parsed rows fit in memory), (3) the real import through ``python -m costs import FILE`` (peak
RSS of that process), and (4) the same file streamed to ``POST /api/costs/imports`` on the public
path: nginx (rendered from the repository's template) in front of the gateway in front of the
costs service, as ``make up`` wires them (peak RSS of the costs server, and the gateway's RSS
sampled every 100 ms during the upload), each into an empty table. The file is generated once; the
rest runs in rounds (raw COPY, CLI, HTTP, raw COPY again), each import set against the faster raw
COPY of its own round, and the summary gives the median over rounds: a shared machine drifts by
tens of percent within minutes. Goals: import >= 50% of the raw COPY rate, peak RSS < 300 MB; the
HTTP import >= 80% of the CLI import's rate, with the gateway growing by less than 50 MB.

Beside each rate, the CPU time per row of the process doing the work (it swings less than wall
time, so the CPU ratio shows whether a change really helped) and of PostgreSQL's processes: the
import has the database cast its text rows to NUMERIC and timestamptz, which costs the database
more CPU than a binary COPY does.

Usage: python -m bench.costs_import_bench [--rows 1000000] [--copy-sample 200000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import cpu_seconds, process, python_module, scratch_database, scratch_names
from common.db import create_pool, migrate
from common.testing import RssSampler, free_port
from costs.app import MIGRATIONS
from costs.focus import COLUMNS, DB_COLUMNS, STORED, Kind, RowParser, read_header
from scripts.platformctl import render_nginx

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "co_bench_admin_key_0123456789abcdefghijklmnop"
HEADER = [c.focus for c in COLUMNS] + ["x_Extra"]
SERVICES = [("Compute", "Amazon EC2"), ("Storage", "Amazon S3"), ("Databases", "Amazon RDS"),
            ("Networking", "Amazon VPC")]  # fmt: skip


def generate(path: Path, rows: int) -> None:
    """Hourly usage rows of one account over ~40 days, costs with 10-12 decimals, some credits."""
    rng = random.Random(42)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        for i in range(rows):
            hour = start + timedelta(hours=(i // 1000) % 960)
            category, service = SERVICES[i % 4]
            cost = (
                f"{'-' if i % 97 == 0 else ''}{rng.randint(0, 9)}.{rng.randint(0, 10**12 - 1):012d}"
            )
            values = {
                "BilledCost": cost, "EffectiveCost": cost, "ListCost": cost,
                "ContractedCost": cost, "BillingAccountId": "123456789012",
                "BillingAccountName": "Bench", "BillingCurrency": "USD",
                "BillingPeriodStart": "2024-01-01T00:00:00Z",
                "BillingPeriodEnd": "2024-03-01T00:00:00Z",
                "ChargeCategory": "Credit" if i % 97 == 0 else "Usage", "ChargeClass": "NULL",
                "ChargeDescription": f"{service} usage", "ChargeFrequency": "Usage-Based",
                "ChargePeriodStart": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ChargePeriodEnd": (hour + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "PricingQuantity": "1", "PricingUnit": "Hours", "ListUnitPrice": "0.0416",
                "ContractedUnitPrice": "0.0380", "ConsumedQuantity": "1", "ConsumedUnit": "Hours",
                "ProviderName": "AWS", "PublisherName": "AWS", "InvoiceIssuerName": "AWS",
                "RegionId": "us-east-1", "RegionName": "US East (N. Virginia)",
                "ResourceId": f"i-{i % 5000:08x}", "ResourceName": f"web-{i % 5000}",
                "ResourceType": "Virtual Machine", "ServiceCategory": category,
                "ServiceName": service, "SubAccountId": "123456789012", "SkuId": "SKU1",
                "Tags": '{"team": "web", "env": "prod"}' if i % 3 else "",
                "x_Extra": "ignored",
            }  # fmt: skip
            writer.writerow([values.get(name, "NULL") for name in HEADER])


def csv_only(path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    with path.open(newline="") as f:
        rows = sum(1 for _ in csv.reader(f)) - 1
    return rows, time.perf_counter() - started


def typed(import_id: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A checked row as Python values: ``Decimal`` for numbers, ``datetime`` for instants."""
    values: list[Any] = [import_id, row[0]]
    for column, value in zip(STORED, row[1:], strict=True):
        if value is not None and column.kind is Kind.DECIMAL:
            value = Decimal(value)
        elif value is not None and column.kind is Kind.TIMESTAMP:
            value = datetime.fromisoformat(value)
        values.append(value)
    return tuple(values)


async def raw_copy(url: str, path: Path, sample: int) -> tuple[int, float, float]:
    """COPY ``sample`` rows that were parsed and converted before the clock started.

    The rows are the importer's own, as Python values (``Decimal``, ``datetime``), COPYed
    straight into ``line_items`` in the binary format. Returns the rows, the wall time and the
    CPU time of this process.
    """
    await migrate(url, "costs", MIGRATIONS)
    import_id = str(uuid.uuid4())  # asyncpg encodes a text UUID in C, the fastest it can
    with path.open(newline="") as f:
        reader = csv.reader(f)
        index, _ = read_header(next(reader))
        parser = RowParser(index, len(HEADER))
        rows = []
        for line, record in enumerate(reader, start=2):
            if line > sample + 1:
                break
            row = parser.parse(line, record)
            assert isinstance(row, tuple)
            rows.append(typed(import_id, row))
    pool = await create_pool(url, schema="costs", min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            started, cpu = time.perf_counter(), time.process_time()
            async with conn.transaction():
                for i in range(0, len(rows), 5000):
                    await conn.copy_records_to_table(
                        "line_items", records=rows[i : i + 5000], columns=DB_COLUMNS
                    )
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            await conn.execute("TRUNCATE line_items")
    finally:
        await pool.close()
    return len(rows), elapsed, cpu


async def truncate(url: str) -> None:
    pool = await create_pool(url, schema="costs", min_size=1, max_size=1)
    try:
        await pool.execute("TRUNCATE line_items")
    finally:
        await pool.close()


# Runs the CLI and then reports the process's own VmHWM: rusage of a child would also count the
# memory the benchmark itself held when it forked.
CLI_PROGRAM = """
import sys
from pathlib import Path
from costs.cli import main
code = main(["import", sys.argv[1]])
status = Path("/proc/self/status").read_text().splitlines()
print(next(l for l in status if l.startswith("VmHWM:")).split()[1], file=sys.stderr)
sys.exit(code)
"""


def cli_import(url: str, path: Path) -> tuple[float, float, float]:
    """Wall time, CPU time and peak RSS (MiB) of the CLI import, interpreter start included."""
    env = {**os.environ, "CLOUDOPS_DATABASE_URL": url, "CLOUDOPS_LOG_LEVEL": "WARNING"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI_PROGRAM, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"import failed with {done.returncode}: {done.stderr[-2000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu, int(done.stderr.strip().splitlines()[-1]) / 1024


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def http_upload(port: int, path: Path) -> tuple[float, int]:
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        with path.open("rb") as body:
            async with session.post(
                f"http://127.0.0.1:{port}/api/costs/imports",
                data=body,
                headers={"Content-Type": "text/csv", "X-API-Key": ADMIN_KEY},
            ) as resp:
                result = await resp.json()
        elapsed = time.perf_counter() - started
    if resp.status != 201:
        raise SystemExit(f"upload failed: {resp.status} {result}")
    return elapsed, int(result["data"]["rows_accepted"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--copy-sample", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="costs-bench-") as tmp:
        path = Path(tmp) / "focus.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1024**2
        took = time.perf_counter() - started
        print(f"generated {args.rows} rows, {size_mb:.0f} MiB in {took:.1f} s")

        rows, seconds = csv_only(path)
        print(f"{'csv module only (parse)':<34} {rows / seconds:>10.0f} rows/s  ({seconds:.1f} s)")

        with contextlib.ExitStack() as stack:
            url = stack.enter_context(scratch_database())
            server = None
            if not args.skip_http:
                server = stack.enter_context(public_path(url, Path(tmp)))
            ratios: dict[str, list[tuple[float, float]]] = {"CLI": [], "HTTP": [], "HTTP/CLI": []}
            for number in range(1, args.rounds + 1):
                print(f"round {number}")
                for label, pair in one_round(url, path, args, server).items():
                    ratios[label].append(pair)
            for label, pairs in ratios.items():
                if pairs:
                    wall = statistics.median(w for w, _ in pairs)
                    cpu = statistics.median(c for _, c in pairs)
                    if label == "HTTP/CLI":
                        print(f"HTTP import via nginx + gateway, median of {len(pairs)} rounds: "
                              f"{100 * wall:.0f}% of the CLI's rows/s (goal >= 80%)")  # fmt: skip
                        continue
                    print(f"{label} import, median of {len(pairs)} rounds: {100 * wall:.0f}% of "
                          f"raw COPY (goal >= 50%); by CPU per row {100 * cpu:.0f}%")  # fmt: skip


def report(label: str, rate: float, cpu_us: float, pg_us: float, extra: str = "") -> None:
    print(f"  {label:<36} {rate:>8.0f} rows/s  {cpu_us:5.1f} us CPU/row (PostgreSQL "
          f"{pg_us:4.1f})  {extra}")  # fmt: skip


def postgres_cpu_seconds() -> float:
    """User + system CPU time of PostgreSQL on this machine so far: its live processes, and the
    ended ones (backends of closed connections), which the postmaster counts as its children's."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the process ended meanwhile
        if "(postgres)" in text:
            fields = text.rpartition(")")[2].split()
            total += sum(map(int, fields[11:15])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass
class PublicPath:
    port: int  # nginx's public port
    costs_pid: int
    gateway_pid: int


@contextlib.contextmanager
def public_path(url: str, run_dir: Path) -> Iterator[PublicPath]:
    """nginx -> gateway -> costs on loopback, each stopped by its PID when the block ends."""
    costs_port, gateway_port, public_port = free_port(), free_port(), free_port()
    prefix, exchange = scratch_names()
    env = {"CLOUDOPS_DATABASE_URL": url, "CLOUDOPS_LOG_LEVEL": "WARNING",
           "CLOUDOPS_EVENTS_EXCHANGE": exchange, "CLOUDOPS_REDIS_PREFIX": prefix,
           "CLOUDOPS_QUEUE_EXPIRES_MS": "60000"}  # fmt: skip
    costs_env = {**env, "CLOUDOPS_COSTS_PORT": str(costs_port)}
    gateway_env = {**env, "CLOUDOPS_GATEWAY_PORT": str(gateway_port),
                   "CLOUDOPS_GATEWAY_COSTS_URL": f"http://127.0.0.1:{costs_port}",
                   "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY}  # fmt: skip
    (run_dir / "dashboard").mkdir(exist_ok=True)
    conf = render_nginx(run_dir, gateway_port, public_port, run_dir / "dashboard")
    nginx = ["nginx", "-c", str(conf), "-p", str(conf.parent)]
    with (
        process(python_module("costs"), costs_env, f"http://127.0.0.1:{costs_port}/health/live")
        as costs,
        process(python_module("gateway"), gateway_env,
                f"http://127.0.0.1:{gateway_port}/health/live") as gateway,
        process(nginx, {}, f"http://127.0.0.1:{public_port}/api/health"),
    ):  # fmt: skip
        yield PublicPath(public_port, costs.pid, gateway.pid)


def one_round(
    url: str, path: Path, args: argparse.Namespace, server: PublicPath | None
) -> dict[str, tuple[float, float]]:
    """Raw COPY, the CLI import, the HTTP import, raw COPY again; each import into an empty table.

    Each import is set against the faster raw COPY of its own round (wall) and the cheaper one
    (CPU), so a machine that slows down mid-run does not skew the ratio; the HTTP import also
    against the CLI import of the same round (``HTTP/CLI``, rows/s).
    """
    raw = []
    pg = postgres_cpu_seconds()
    copied, seconds, cpu = asyncio.run(raw_copy(url, path, args.copy_sample))
    pg = postgres_cpu_seconds() - pg
    raw.append((copied / seconds, 1e6 * cpu / copied))
    report("raw COPY of pre-parsed rows", *raw[-1], 1e6 * pg / copied,
           f"({copied} rows in {seconds:.1f} s)")  # fmt: skip

    imports = {}
    pg = postgres_cpu_seconds()
    elapsed, cpu, peak = cli_import(url, path)
    pg = postgres_cpu_seconds() - pg
    imports["CLI"] = (args.rows / elapsed, 1e6 * cpu / args.rows)
    report("import: python -m costs import", *imports["CLI"], 1e6 * pg / args.rows,
           f"({elapsed:.1f} s)  peak RSS {peak:.0f} MiB")  # fmt: skip
    asyncio.run(truncate(url))

    cli_rate = imports["CLI"][0]
    http_vs_cli = None
    if server is not None:
        pid = server.costs_pid
        idle, cpu, pg = peak_rss_mb(pid), cpu_seconds([pid]), postgres_cpu_seconds()
        gateway_cpu = cpu_seconds([server.gateway_pid])
        with RssSampler(server.gateway_pid) as gateway:
            elapsed, accepted = asyncio.run(http_upload(server.port, path))
        peak, cpu, pg = peak_rss_mb(pid), cpu_seconds([pid]) - cpu, postgres_cpu_seconds() - pg
        gateway_cpu = cpu_seconds([server.gateway_pid]) - gateway_cpu
        imports["HTTP"] = (accepted / elapsed, 1e6 * cpu / accepted)
        report("import: POST via nginx + gateway", *imports["HTTP"], 1e6 * pg / accepted,
               f"({elapsed:.1f} s)  costs peak RSS {peak:.0f} MiB (idle {idle:.0f})")  # fmt: skip
        print(f"  {'':<36} gateway: RSS {gateway.before:.0f} MiB before, peak {gateway.peak:.0f} "
              f"MiB during the upload (+{gateway.peak - gateway.before:.1f}, goal < 50); "
              f"{1e6 * gateway_cpu / accepted:.1f} us CPU/row")  # fmt: skip
        http_vs_cli = imports["HTTP"][0] / cli_rate
        print(f"  HTTP import through nginx and the gateway = {100 * http_vs_cli:.0f}% of the "
              f"CLI import's rows/s (goal >= 80%)")  # fmt: skip
        asyncio.run(truncate(url))

    pg = postgres_cpu_seconds()
    copied, seconds, cpu = asyncio.run(raw_copy(url, path, args.copy_sample))
    pg = postgres_cpu_seconds() - pg
    raw.append((copied / seconds, 1e6 * cpu / copied))
    report("raw COPY of pre-parsed rows (again)", *raw[-1], 1e6 * pg / copied)
    bar, cpu_bar = max(r for r, _ in raw), min(c for _, c in raw)
    ratios = {}
    for label, (rate, cpu_us) in imports.items():
        ratios[label] = (rate / bar, cpu_bar / cpu_us)
        print(f"  {label} import = {100 * rate / bar:.0f}% of the faster raw COPY; "
              f"by CPU time per row {100 * cpu_bar / cpu_us:.0f}%")  # fmt: skip
    if http_vs_cli is not None:
        ratios["HTTP/CLI"] = (http_vs_cli, http_vs_cli)
    return ratios


if __name__ == "__main__":
    main()
