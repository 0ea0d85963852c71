"""``costs-import FILE`` / ``python -m costs import FILE``: import a FOCUS file from disk."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from common.db import create_pool, migrate
from common.encoding import dumps
from common.errors import ProblemError
from common.redis import create_redis
from costs.app import MIGRATIONS, cost_cache, make_importer
from costs.settings import CostsSettings


async def file_chunks(path: Path, size: int) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, size):
            yield chunk


async def import_file(path: Path, settings: CostsSettings) -> int:
    await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
    pool = await create_pool(
        settings.database_url, schema=settings.db_schema, min_size=1, max_size=2
    )
    redis = create_redis(settings.redis_url)  # the service's cached answers on these months
    try:
        importer = make_importer(pool, settings, cost_cache(redis, settings).imported)
        try:
            result = await importer.run(
                file_chunks(path, settings.import_chunk_bytes), filename=path.name
            )
        except ProblemError as exc:
            sys.stderr.write(dumps({"detail": exc.detail, "errors": exc.errors}).decode() + "\n")
            return 2
        sys.stdout.write(dumps(result).decode() + "\n")
        return 0
    finally:
        await pool.close()
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="costs", description="CloudOps costs tools")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "import", help="import a FOCUS 1.0 to 1.3 cost and usage CSV file (or .csv.gz)"
    )
    command.add_argument("file", type=Path)
    args = parser.parse_args(list(argv) if argv is not None else None)
    if not args.file.is_file():
        parser.error(f"{args.file} is not a file")
    return asyncio.run(import_file(args.file, CostsSettings()))


def import_command() -> int:
    """The ``costs-import FILE`` entry point: ``costs import FILE`` under a shorter name."""
    return main(["import", *sys.argv[1:]])
