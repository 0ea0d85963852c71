"""The ``cloudops`` command: the API from a terminal.

    cloudops resources list [--status running] [--provider aws] [--json]
    cloudops costs import FILE          (a progress bar, then the import's result)
    cloudops alerts tail [--max-events N]

The platform and the credential come from ``--url`` / ``CLOUDOPS_URL`` and ``CLOUDOPS_API_KEY``
(or ``CLOUDOPS_TOKEN`` for a bearer token); they are never taken from the command line, where
other users of the machine could read them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from cloudops_client.client import DEFAULT_URL, CloudOps
from cloudops_client.errors import ApiError

RESOURCE_COLUMNS = ("id", "name", "provider", "type", "status", "region", "hourly_cost")


class ProgressBar:
    """``[#########           ]  45%  12.0/26.7 MiB  3.1 MiB/s`` on one line of ``out``."""

    def __init__(self, out: TextIO, width: int = 30) -> None:
        self.out = out
        self.width = width
        self.started = time.monotonic()

    def __call__(self, sent: int, total: int) -> None:
        share = sent / total if total else 1.0
        filled = int(share * self.width)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        mib = 1024 * 1024
        self.out.write(
            f"\r[{'#' * filled}{' ' * (self.width - filled)}] {share:4.0%} "
            f"{sent / mib:.1f}/{total / mib:.1f} MiB {sent / mib / elapsed:.1f} MiB/s"
        )
        if sent >= total:
            self.out.write("\n")
        self.out.flush()


def _client(args: argparse.Namespace) -> CloudOps:
    key, token = os.environ.get("CLOUDOPS_API_KEY"), os.environ.get("CLOUDOPS_TOKEN")
    if not key and not token:
        raise SystemExit("cloudops: set CLOUDOPS_API_KEY (or CLOUDOPS_TOKEN)")
    return CloudOps(args.url, api_key=key or None, token=None if key else token)


def resources_list(args: argparse.Namespace, out: TextIO) -> None:
    filters = {"status": args.status, "provider": args.provider, "type": args.type,
               "region": args.region, "q": args.q}  # fmt: skip
    with _client(args) as api:
        items = api.resources.list(**filters)
        if args.json:
            for item in items:
                out.write(json.dumps(item) + "\n")
            return
        rows = [[str(item.get(c) or "") for c in RESOURCE_COLUMNS] for item in items]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(RESOURCE_COLUMNS)]
    for row in [list(RESOURCE_COLUMNS), *rows]:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.write(f"{len(rows)} resources\n")


def costs_import(args: argparse.Namespace, out: TextIO) -> None:
    with _client(args) as api:
        result = api.costs.import_focus(args.file, progress=ProgressBar(sys.stderr))
    out.write(json.dumps(result, indent=2) + "\n")


def alerts_tail(args: argparse.Namespace, out: TextIO) -> None:
    with _client(args) as api:
        for count, event in enumerate(api.alerts.tail(last_event_id=args.after), start=1):
            alert: dict[str, Any] = event.data if isinstance(event.data, dict) else {}
            labels = alert.get("labels") or {}
            name = labels.get("alertname", alert.get("id", ""))
            out.write(
                f"{event.id or '-'} {event.type} {alert.get('severity', '-')} "
                f"{alert.get('status', '-')} {name} {json.dumps(event.data)}\n"
            )
            out.flush()
            if args.max_events and count >= args.max_events:
                return


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="cloudops", description="The CloudOps API from a terminal.")
    top.add_argument("--url", default=os.environ.get("CLOUDOPS_URL", DEFAULT_URL))
    areas = top.add_subparsers(dest="area", required=True)

    resources = areas.add_parser("resources").add_subparsers(dest="command", required=True)
    listing = resources.add_parser("list", help="list resources (every page)")
    for name in ("status", "provider", "type", "region", "q"):
        listing.add_argument(f"--{name}")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=resources_list)

    costs = areas.add_parser("costs").add_subparsers(dest="command", required=True)
    upload = costs.add_parser("import", help="import a FOCUS file (CSV or .gz)")
    upload.add_argument("file")
    upload.set_defaults(run=costs_import)

    alerts = areas.add_parser("alerts").add_subparsers(dest="command", required=True)
    tail = alerts.add_parser("tail", help="print alert changes as they happen")
    tail.add_argument("--after", help="resume after this event id")
    tail.add_argument("--max-events", type=int, default=0, help="stop after N events")
    tail.set_defaults(run=alerts_tail)
    return top


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.run(args, sys.stdout)
    except ApiError as exc:
        raise SystemExit(f"cloudops: {exc}") from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
