"""``python -m alerts``: serve the alerts service."""

from alerts.settings import AlertsSettings
from common.serve import serve

if __name__ == "__main__":
    serve("alerts.app:create_app", AlertsSettings())
