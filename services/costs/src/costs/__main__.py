"""``python -m costs`` serves the costs service; ``python -m costs import FILE`` imports a bill."""

import sys

from common.serve import serve
from costs.settings import CostsSettings

if __name__ == "__main__":
    if len(sys.argv) > 1:
        from costs.cli import main

        sys.exit(main(sys.argv[1:]))
    serve("costs.app:create_app", CostsSettings())
