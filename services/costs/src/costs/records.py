"""Streaming CSV records from raw (optionally gzip) bytes, with bounded memory.

Bytes arrive in chunks; complete CSV records come out with the physical line each starts on. A
record may span lines inside quotes (tracked by quote parity, which RFC 4180 escaping preserves).
Any physical line or record larger than ``max_line_bytes`` stops the file, so one 1 GB line costs
at most ``max_line_bytes`` plus a chunk of memory.
"""

from __future__ import annotations

import codecs
import csv
import zlib
from collections.abc import AsyncIterable, AsyncIterator

GZIP_MAGIC = b"\x1f\x8b"


class FileError(ValueError):
    """The file as a whole cannot be imported; ``status`` is the HTTP status to answer with."""

    def __init__(
        self, message: str, *, status: int = 422, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors = errors or []


Records = tuple[list[int], list[str]]
"""Complete CSV records: the physical line each starts on, and its text."""


class RecordSplitter:
    """Turns byte chunks into complete CSV records and the lines they start on."""

    def __init__(self, *, max_line_bytes: int, chunk_bytes: int = 256 * 1024) -> None:
        self.max_line_bytes = max_line_bytes
        self.chunk_bytes = chunk_bytes
        self.line = 0  # physical lines completed so far
        self._sniffed = False
        self._gunzip: zlib._Decompress | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self._pending = ""
        self._bytes_since_newline = 0
        self._record: list[str] = []
        self._record_quotes = 0
        self._record_size = 0

    def feed(self, data: bytes) -> Records:
        if not self._sniffed and data:
            self._sniffed = True
            if data.startswith(GZIP_MAGIC):
                self._gunzip = zlib.decompressobj(wbits=31)
        if self._gunzip is None:
            return self._text(data)
        out: Records = ([], [])
        # Inflate in bounded pieces: a small gzip bomb never becomes one huge buffer.
        while data:
            try:
                plain = self._gunzip.decompress(data, self.chunk_bytes)
            except zlib.error as exc:
                raise FileError(f"The gzip stream is corrupt: {exc}.", status=400) from None
            _extend(out, self._text(plain))
            if self._gunzip.eof:
                data = self._gunzip.unused_data  # another gzip member follows
                self._gunzip = zlib.decompressobj(wbits=31) if data else self._gunzip
            else:
                data = self._gunzip.unconsumed_tail
        return out

    def finish(self) -> Records:
        if self._gunzip is not None and not self._gunzip.eof:
            raise FileError("The gzip stream ends early (truncated file).", status=400)
        out = self._text(b"", final=True)
        if self._pending:
            _extend(out, self._lines([self._pending]))
            self._pending = ""
        if self._record:
            raise FileError(
                f"Line {self.line - len(self._record) + 1}: a quoted field is never closed.",
                errors=[{"field": "file", "message": "unterminated quoted field"}],
            )
        return out

    def _text(self, data: bytes, final: bool = False) -> Records:
        newline = data.rfind(b"\n")
        self._bytes_since_newline = (
            len(data) - newline - 1 if newline >= 0 else self._bytes_since_newline + len(data)
        )
        if self._bytes_since_newline > self.max_line_bytes:
            raise self._too_long(self.line + data.count(b"\n") + 1)
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            line = self.line + data[: max(exc.start, 0)].count(b"\n") + 1
            raise FileError(
                f"Line {line}: the file is not valid UTF-8 ({exc.reason}).",
                status=400,
                errors=[{"field": f"line {line}", "message": "invalid UTF-8 bytes"}],
            ) from None
        if "\n" not in text:
            self._pending += text
            return [], []
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        return self._lines(lines)

    def _lines(self, lines: list[str]) -> Records:
        # Usually every line is a whole record: an even number of quotes on each, none open.
        if not self._record and 1 not in [physical.count('"') & 1 for physical in lines]:
            first = self.line + 1
            self.line += len(lines)
            return list(range(first, self.line + 1)), lines
        out: Records = ([], [])
        for physical in lines:
            self._line(physical, out)
        return out

    def _line(self, physical: str, out: Records) -> None:
        self.line += 1
        quotes = physical.count('"')
        if not self._record and not quotes & 1:
            out[0].append(self.line)
            out[1].append(physical)
            return
        self._record.append(physical)
        self._record_quotes += quotes
        self._record_size += len(physical) + 1
        if self._record_size > self.max_line_bytes:
            raise self._too_long(self.line - len(self._record) + 1)
        if self._record_quotes & 1:
            return
        out[0].append(self.line - len(self._record) + 1)
        out[1].append("\n".join(self._record))
        self._record, self._record_quotes, self._record_size = [], 0, 0

    def _too_long(self, line: int) -> FileError:
        return FileError(
            f"Line {line} is longer than the {self.max_line_bytes} byte limit.",
            status=413,
            errors=[{"field": f"line {line}", "message": "line too long"}],
        )


def parse_records(records: Records) -> tuple[list[int], list[list[str]]]:
    """CSV fields of each complete record; broken quoting is an error for the whole file.

    Each text is exactly one record, so the reader yields one row per text (``[]`` for a blank
    line, which is dropped) and rows pair with their lines by position.
    """
    lines, texts = records
    try:
        rows = list(csv.reader(texts, strict=True))
    except csv.Error:
        _raise_first_csv_error(records)
        raise  # pragma: no cover - the search above always raises
    if [] in rows:
        kept = [i for i, fields in enumerate(rows) if fields]
        return [lines[i] for i in kept], [rows[i] for i in kept]
    return lines, rows


def _raise_first_csv_error(records: Records) -> None:
    for line, text in zip(*records, strict=True):
        try:
            list(csv.reader([text], strict=True))
        except csv.Error as exc:
            raise FileError(
                f"Line {line} cannot be read as CSV (broken quoting or a field too large: {exc}).",
                errors=[{"field": f"line {line}", "message": "not valid CSV"}],
            ) from None


async def csv_records(
    chunks: AsyncIterable[bytes], *, max_line_bytes: int, chunk_bytes: int = 256 * 1024
) -> AsyncIterator[tuple[list[int], list[list[str]]]]:
    """Blocks of records as the bytes arrive: their lines, and their fields; no blank lines."""
    splitter = RecordSplitter(max_line_bytes=max_line_bytes, chunk_bytes=chunk_bytes)
    async for chunk in chunks:
        records = splitter.feed(chunk)
        if records[1]:
            yield parse_records(records)
    records = splitter.finish()
    if records[1]:
        yield parse_records(records)


def _extend(out: Records, more: Records) -> None:
    out[0].extend(more[0])
    out[1].extend(more[1])
