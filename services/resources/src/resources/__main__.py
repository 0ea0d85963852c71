"""``python -m resources``: serve the resources service."""

from common.serve import serve
from resources.settings import ResourcesSettings

if __name__ == "__main__":
    serve("resources.app:create_app", ResourcesSettings())
