"""What an import found wrong in a file, and whether its money adds up.

Findings are kept bounded: a count per rule and the first few examples of each. The
reconciliation sums each cost basis per currency over the file as it streams, and compares those
sums with what was stored (plus what was rejected) once the file is loaded.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal, localcontext
from typing import Any

from costs.focus import EXACT, Block, Finding


class FindingLog:
    """Findings counted per rule, with at most ``examples`` examples of each."""

    def __init__(self, examples: int = 10) -> None:
        self.examples = examples
        self.rows_with_findings = 0
        self.rules: dict[str, dict[str, Any]] = {}

    def add(self, findings: list[Finding], rows: int) -> None:
        """Findings of one block (on ``rows`` distinct rows)."""
        self.rows_with_findings += rows
        for f in findings:
            rule = self.rules.setdefault(f.rule, {"count": 0, "examples": []})
            rule["count"] += 1
            if len(rule["examples"]) < self.examples:
                example = {"line": f.line, "column": f.column, "value": f.value, "stored": f.stored}
                rule["examples"].append(example)

    def report(self) -> dict[str, Any]:
        return dict(sorted(self.rules.items()))


class Reconciliation:
    """Cost sums per ``(currency, basis)``: over the file as read, and over its rejected rows."""

    def __init__(self) -> None:
        self.file: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.rejected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)

    def add(self, block: Block) -> None:
        with localcontext(EXACT):
            for key, amount in block.totals.items():
                self.file[key] += amount
            for key, amount in block.rejected_totals.items():
                self.rejected[key] += amount

    def compare(
        self, stored: dict[tuple[str, str], Decimal]
    ) -> tuple[bool, dict[str, dict[str, dict[str, Decimal]]]]:
        """Whether the file's sums equal stored plus rejected for every currency and basis,
        and the three sums of each."""
        balanced = True
        report: dict[str, dict[str, dict[str, Decimal]]] = {}
        with localcontext(EXACT):
            for key in sorted(set(self.file) | set(stored)):
                currency, basis = key
                file = self.file.get(key, Decimal(0))
                kept = stored.get(key, Decimal(0))
                rejected = self.rejected.get(key, Decimal(0))
                balanced = balanced and file == kept + rejected
                sums = {"file": file, "stored": kept, "rejected": rejected}
                report.setdefault(currency, {})[basis] = sums
        return balanced, report
