"""``python -m costs`` serves the costs service; ``python -m costs import FILE`` imports a bill;
``python -m costs declare-queues`` declares the queues and bindings of its consumers (deploy
time, before any service publishes) and prints their names."""

import asyncio
import sys

from common.serve import serve
from costs.settings import CostsSettings

if __name__ == "__main__":
    if sys.argv[1:] == ["declare-queues"]:
        from costs.app import declare_queues

        sys.stdout.write("".join(f"{queue}\n" for queue in asyncio.run(declare_queues())))
        sys.exit(0)
    if len(sys.argv) > 1:
        from costs.cli import main

        sys.exit(main(sys.argv[1:]))
    serve("costs.app:create_app", CostsSettings())
