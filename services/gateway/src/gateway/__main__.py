"""``python -m gateway``: serve the gateway."""

from common.serve import serve
from gateway.settings import GatewaySettings

if __name__ == "__main__":
    serve("gateway.app:create_app", GatewaySettings())
