"""The FOCUS import use case: stream a file into ``line_items`` as one all-or-nothing transaction.

Rows are loaded with ``COPY`` in batches while the file is still arriving. A row with money is
kept even where it breaks the spec (the value is stored as null or normalised, and the finding
recorded); only rows that cannot be costed or placed in time are rejected, with line and reason.
Each import is reconciled: the cost sums of the file as read must equal what was stored plus
what was rejected, per currency and basis. A file-level problem (header, another FOCUS dataset,
encoding, quoting, a line over the limit, sums that do not reconcile) rolls everything back.
Rows of the same billing account whose billing period overlaps the new file's are replaced at the
end, under a per-account lock, so re-imports never duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
from loguru import logger
from prometheus_client import Counter

from common.errors import NotFound, ProblemError
from costs import storage
from costs.focus import HeaderError, Rejection, RowParser, read_header
from costs.quality import FindingLog, Reconciliation
from costs.records import FileError, csv_records

RowLoader = Callable[[Any, UUID, Sequence[Sequence[Any]]], Awaitable[None]]

#: How long a progress write that found no free connection waits for one, off the import's path.
LATE_REPORT_SECONDS = 5.0

IMPORT_ROWS = Counter(
    "costs_import_rows_total", "FOCUS rows read by outcome.", ["service", "outcome"]
)


@dataclass
class ImportProgress:
    import_id: UUID
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    focus_version: str | None = None
    rejections: list[Rejection] = field(default_factory=list)
    findings: FindingLog = field(default_factory=FindingLog)
    reconciliation: Reconciliation = field(default_factory=Reconciliation)
    reported_at: float = float("-inf")
    #: A progress write waiting for a free connection, off the import's path.
    late_report: asyncio.Task[None] | None = None


class ImportFailed(ProblemError):
    """A file-level problem: nothing of the file was kept."""

    slug = "import-failed"


class Unreconciled(Exception):
    """The stored sums differ from the file's: something between parsing and loading lost rows."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__("the stored cost sums differ from the file's")
        self.report = report


async def _hashing(chunks: AsyncIterable[bytes], digest: Any, limit: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise FileError(f"The upload is larger than {limit} bytes.", status=413)
        digest.update(chunk)
        yield chunk


class Importer:
    """Runs FOCUS imports against one pool."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_line_bytes: int = 1024 * 1024,
        max_upload_bytes: int = 20 * 1024**3,
        batch_rows: int = 5000,
        chunk_bytes: int = 128 * 1024,
        max_stored_rejections: int = 1000,
        progress_seconds: float = 0.5,
        service: str = "costs",
        load_rows: RowLoader = storage.load_rows,
        changed: Callable[[set[str]], Awaitable[None]] | None = None,
    ) -> None:
        self.load_rows = load_rows
        #: Called after a committed import with the UTC months (``YYYY-MM``) whose charges it
        #: added or replaced (the cost-aware cache invalidates exactly those).
        self.changed = changed
        self.progress_seconds = progress_seconds
        self.pool = pool
        self.max_line_bytes = max_line_bytes
        self.max_upload_bytes = max_upload_bytes
        self.batch_rows = batch_rows
        self.chunk_bytes = chunk_bytes
        self.max_stored_rejections = max_stored_rejections
        self.service = service

    async def run(
        self, chunks: AsyncIterable[bytes], *, filename: str, created_by: str | None = None
    ) -> dict[str, Any]:
        """Import one file; returns the import's outcome or raises :class:`ImportFailed`."""
        progress = ImportProgress(uuid.uuid4())
        async with self.pool.acquire() as conn:
            await storage.create_import(conn, progress.import_id, filename, created_by)
        digest = hashlib.sha256()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await self._load(conn, _hashing(chunks, digest, self.max_upload_bytes), progress)
                reconciliation = await self._reconcile(conn, progress)
                replaced, months = await storage.replace_overlapping(
                    conn, progress.import_id, digest.hexdigest()
                )
                months |= await storage.import_months(conn, progress.import_id)
                await storage.store_rejections(conn, progress.import_id, progress.rejections)
                await storage.finish_import(
                    conn,
                    progress,
                    sha256=digest.hexdigest(),
                    rows_replaced=replaced,
                    reconciliation=reconciliation,
                )
        except Unreconciled as exc:
            await self._fail(progress, exc, exc.report)
            logger.error("focus import does not reconcile", import_id=str(progress.import_id))
            raise ImportFailed(
                f"Import {progress.import_id} failed, nothing was imported: the stored cost sums "
                "differ from the file's (see the import's reconciliation).",
                status=500,
                errors=[{"field": "reconciliation", "message": "stored sums differ from the file"}],
                headers={"X-Import-Id": str(progress.import_id)},
            ) from None
        except (FileError, HeaderError) as exc:
            await self._fail(progress, exc)
            status = exc.status if isinstance(exc, FileError) else 422
            message = exc.message if isinstance(exc, FileError) else str(exc)
            raise ImportFailed(
                f"Import {progress.import_id} failed, nothing was imported: {message}",
                status=status,
                errors=exc.errors,
                headers={"X-Import-Id": str(progress.import_id)},
            ) from None
        except BaseException as exc:
            # Shielded: a cancelled upload must still be recorded as failed.
            await asyncio.shield(self._fail(progress, exc))
            raise
        if self.changed is not None:
            await self.changed(months)
        IMPORT_ROWS.labels(self.service, "accepted").inc(progress.rows_accepted)
        IMPORT_ROWS.labels(self.service, "rejected").inc(progress.rows_rejected)
        IMPORT_ROWS.labels(self.service, "with_findings").inc(progress.findings.rows_with_findings)
        logger.info(
            "focus import finished",
            import_id=str(progress.import_id),
            accepted=progress.rows_accepted,
            with_findings=progress.findings.rows_with_findings,
            rejected=progress.rows_rejected,
        )
        return await self.get(progress.import_id)

    async def _reconcile(
        self, conn: asyncpg.pool.PoolConnectionProxy[Any], progress: ImportProgress
    ) -> dict[str, Any]:
        """The file's sums against the stored ones; raises :class:`Unreconciled` if they differ."""
        stored = await storage.stored_sums(conn, progress.import_id)
        balanced, report = progress.reconciliation.compare(stored)
        if not balanced:
            raise Unreconciled(report)
        return report

    async def _fail(
        self,
        progress: ImportProgress,
        exc: BaseException,
        reconciliation: dict[str, Any] | None = None,
    ) -> None:
        error: dict[str, Any]
        if isinstance(exc, Unreconciled):
            error = {"detail": str(exc), "errors": []}
        elif isinstance(exc, FileError):
            error = {"detail": exc.message, "errors": exc.errors}
        elif isinstance(exc, HeaderError):
            error = {"detail": str(exc), "errors": exc.errors}
        else:
            error = {"detail": f"interrupted: {type(exc).__name__}", "errors": []}
        try:
            async with self.pool.acquire() as conn:
                await storage.fail_import(conn, progress, error, reconciliation)
        except Exception:  # the original error matters more than the bookkeeping one
            logger.exception("could not record the failed import")

    async def _load(
        self,
        conn: asyncpg.pool.PoolConnectionProxy[Any],
        chunks: AsyncIterable[bytes],
        progress: ImportProgress,
    ) -> None:
        """Parse and load in a pipeline: one batch is loading while the next one is parsed.

        PostgreSQL ingests a batch (COPY, then the typed INSERT) on its own core, so overlapping
        it with parsing here nearly hides it; at most one batch is in flight (one connection),
        which bounds memory to two batches.
        """
        parser: RowParser | None = None
        batch: list[tuple[Any, ...]] = []
        copying: asyncio.Task[None] | None = None

        async def send(rows: list[tuple[Any, ...]]) -> None:
            nonlocal copying
            if copying is not None:
                await copying
            copying = asyncio.create_task(self._copy(conn, rows, progress))

        await storage.create_staging(conn)
        try:
            async for lines, records in csv_records(
                chunks, max_line_bytes=self.max_line_bytes, chunk_bytes=self.chunk_bytes
            ):
                if parser is None:
                    if not records:
                        continue  # blank lines before the header
                    index, progress.focus_version = read_header(records[0])
                    parser = RowParser(index, len(records[0]))
                    header = parser.header_findings(lines[0])
                    progress.findings.add(header, 0)
                    lines, records = lines[1:], records[1:]
                progress.rows_read += len(records)
                block = parser.parse_block(lines, records)
                if block.rejections:
                    progress.rows_rejected += len(block.rejections)
                    room = self.max_stored_rejections - len(progress.rejections)
                    progress.rejections += block.rejections[: max(room, 0)]
                if block.findings:
                    progress.findings.add(block.findings, block.rows_with_findings)
                progress.reconciliation.add(block)
                batch += block.rows
                if len(batch) >= self.batch_rows:
                    await send(batch)
                    batch = []
                # Give the in-flight COPY a turn even when the next chunk is already buffered.
                await asyncio.sleep(0)
            if parser is None:
                raise FileError("The file is empty: no FOCUS header and no rows.", status=400)
            if batch:
                await send(batch)
        finally:
            # The transaction must not end (commit or roll back) under a running COPY.
            if copying is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(copying)
        if copying is not None:
            await copying  # re-raises a failed COPY

    async def _copy(
        self,
        conn: asyncpg.pool.PoolConnectionProxy[Any],
        batch: list[tuple[Any, ...]],
        progress: ImportProgress,
    ) -> None:
        await self.load_rows(conn, progress.import_id, batch)
        progress.rows_accepted += len(batch)
        await self._report(progress)

    async def _report(self, progress: ImportProgress) -> None:
        """Write progress outside the import's transaction, so GET shows it while it runs.

        Throttled, and the import never waits for a free connection (every running import
        already holds one, and waiting here could starve the pool into a deadlock). With none
        free at once, a task off the import's path writes it as soon as one is: an upload that
        pauses after a batch still shows that batch.
        """
        now = time.monotonic()
        if now - progress.reported_at < self.progress_seconds:
            return
        progress.reported_at = now
        try:
            async with self.pool.acquire(timeout=0.05) as other:
                await storage.record_progress(other, progress)
        except TimeoutError:
            if progress.late_report is None or progress.late_report.done():
                progress.late_report = asyncio.create_task(self._report_when_free(progress))

    async def _report_when_free(self, progress: ImportProgress) -> None:
        # The latest counts when a connection frees up; once the import has ended (its status
        # is no longer running) the write changes nothing.
        try:
            async with self.pool.acquire(timeout=LATE_REPORT_SECONDS) as other:
                await storage.record_progress(other, progress)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            logger.debug("import progress not written", error=type(exc).__name__)

    async def get(self, import_id: UUID, *, rejection_limit: int = 100) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            found = await storage.get_import(conn, import_id, rejection_limit)
        if found is None:
            raise NotFound(f"No import with id {import_id}.")
        return found
