"""The baseline: a bare aiohttp app answering a small JSON body, nothing else."""

from __future__ import annotations

import sys

from aiohttp import web

BODY = b'{"success":true,"data":[]}'


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


def main() -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/health/live", hello)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
