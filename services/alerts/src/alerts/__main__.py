"""``python -m alerts`` serves the alerts service; ``python -m alerts declare-queues`` declares
the queue and bindings its rules define (deploy time, before any service publishes) and prints
their names."""

import asyncio
import sys

from alerts.settings import AlertsSettings
from common.serve import serve

if __name__ == "__main__":
    if sys.argv[1:] == ["declare-queues"]:
        from alerts.app import declare_queues

        sys.stdout.write("".join(f"{queue}\n" for queue in asyncio.run(declare_queues())))
        sys.exit(0)
    if len(sys.argv) > 1:
        sys.exit(f"usage: python -m alerts [declare-queues], not {' '.join(sys.argv[1:])}")
    serve("alerts.app:create_app", AlertsSettings())
