"""Request size and timeout limits that every hop of the public path must agree on.

The gateway's route table and the costs service's settings import these values; nginx's
configurations (``nginx/nginx.conf.template``, ``compose/nginx.conf``, ``k8s/ingress.yaml``)
cannot, so ``tests/test_upload_streaming.py`` parses them and fails when one drifts. A hop with
a smaller limit than the one behind it refuses what the README promises; a larger one lets a
client hold a connection past the point where the next hop has given up.
"""

from __future__ import annotations

# The body of a JSON API call (nginx ``client_max_body_size 10m``, gateway ``max_body_bytes``).
API_MAX_BODY_BYTES = 10 * 1024**2

# A billing file sent to ``POST /api/costs/imports``, counted as sent (gzip counts compressed).
UPLOAD_MAX_BYTES = 2 * 1024**3
# Its media types: a FOCUS CSV, or that CSV gzip-compressed (the gateway's 415 and the costs
# service's are the same list).
UPLOAD_TYPES = ("text/csv", "application/csv", "application/gzip", "application/x-gzip")

# How long an upload's answer may take once its body has been sent: the import commits the
# whole file in one transaction, so the answer only comes when the last row is stored.
# nginx ``proxy_read_timeout``/``proxy_send_timeout``, the gateway's upstream read timeout.
UPLOAD_READ_TIMEOUT_SECONDS = 600

# How deep a JSON body may nest (objects and arrays), in every service and at the gateway.
JSON_MAX_DEPTH = 32

# How long a JSON body may take to arrive once its headers have: a client that trickles bytes
# holds a connection and a worker's attention for nothing (nginx ``client_body_timeout`` is the
# same guard at the edge, between two reads).
BODY_READ_TIMEOUT_SECONDS = 15.0
