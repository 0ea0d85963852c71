"""Run a service: one process, or N worker processes listening on one port with SO_REUSEPORT.

With SO_REUSEPORT each worker has its own accept queue and the kernel spreads new connections over
them, rather than letting whichever worker wakes first take them all.

With several workers, Prometheus multiprocess mode is switched on *before* the application module
(and so ``common.metrics``) is imported, and each dead worker's live gauges are cleaned up.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web
from loguru import logger

from common.config import ServiceSettings
from common.logging import setup_logging

AppFactory = Callable[[Any], web.Application]
# More than CRASH_BUDGET worker deaths within CRASH_WINDOW seconds stop the service.
CRASH_BUDGET = 5
CRASH_WINDOW = 30.0
#: The cycle collector's thresholds once a worker serves. Python's default runs a young
#: collection whenever 700 more container objects are alive than at the last one, and a hundred
#: requests in flight hold more than that: under load it ran every few dozen requests, found
#: almost nothing (their objects are freed by reference counting), and cost about 4 us of each
#: cached read. At 10,000 it runs about once per 100,000 such requests.
GC_THRESHOLDS = (10_000, 20, 50)


def _load_factory(path: str) -> AppFactory:
    module_name, _, attr = path.partition(":")
    factory: AppFactory = getattr(importlib.import_module(module_name), attr)
    return factory


def _listen(settings: ServiceSettings, *, reuse_port: bool) -> socket.socket:
    return socket.create_server(
        (settings.host, settings.port), reuse_port=reuse_port, backlog=settings.listen_backlog
    )


def _event_loop(settings: ServiceSettings) -> asyncio.AbstractEventLoop:
    """uvloop unless switched off: its C event loop and transports leave the CPU to handlers."""
    return uvloop.new_event_loop() if settings.uvloop else asyncio.new_event_loop()


def _run_worker(
    factory_path: str, settings: ServiceSettings, sock: socket.socket | None = None
) -> None:
    setup_logging(settings.service_name, settings.log_level)
    sock = sock or _listen(settings, reuse_port=True)
    app = _load_factory(factory_path)(settings)
    app.on_startup.append(_freeze_heap)
    app.on_startup.append(_log_started)
    loop = _event_loop(settings)
    web.run_app(app, sock=sock, print=None, access_log=None, shutdown_timeout=10, loop=loop)


async def _log_started(app: web.Application) -> None:
    """One line per worker saying which event loop serves it, so an operator can check."""
    loop = asyncio.get_running_loop()
    logger.info("worker started", pid=os.getpid(), event_loop=type(loop).__module__.split(".")[0])


async def _freeze_heap(app: web.Application) -> None:
    """Once started, move every object alive (modules, settings, pools) out of the collector's
    sight: full collections then only walk what requests allocate, which keeps their pauses out
    of the latency tail. Then collect less often (:data:`GC_THRESHOLDS`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _prepare_metrics_dir(settings: ServiceSettings) -> None:
    """Make ``PROMETHEUS_MULTIPROC_DIR`` exist and hold no stale values (a temp dir if unset).

    Emptied, not deleted: on Kubernetes it is typically an emptyDir mount point.
    """
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured is None and settings.workers == 1:
        return
    metrics_dir = Path(
        configured or tempfile.mkdtemp(prefix=f"cloudops-{settings.service_name}-metrics-")
    )
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


def serve(factory_path: str, settings: ServiceSettings) -> None:
    """Serve ``module:create_app`` with ``settings`` until SIGINT/SIGTERM."""
    _prepare_metrics_dir(settings)
    if settings.workers == 1:
        _run_worker(factory_path, settings, _listen(settings, reuse_port=False))
        return

    context = multiprocessing.get_context("fork")
    from prometheus_client import multiprocess  # only now: the env var above must come first

    def spawn() -> multiprocessing.process.BaseProcess:
        worker = context.Process(target=_run_worker, args=(factory_path, settings), daemon=False)
        worker.start()
        return worker

    setup_logging(settings.service_name, settings.log_level)
    workers = [spawn() for _ in range(settings.workers)]
    stopping = False
    exit_code = 0
    crashes: list[float] = []

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGINT)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while workers:
        wait([w.sentinel for w in workers])
        for worker in [w for w in workers if not w.is_alive()]:
            workers.remove(worker)
            if worker.pid is not None:
                multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
            if stopping:
                continue
            now = time.monotonic()
            crashes = [t for t in crashes if now - t < CRASH_WINDOW] + [now]
            if len(crashes) > CRASH_BUDGET:
                # Workers dying over and over (port taken, bad settings) would only repeat.
                logger.error("workers keep failing, stopping", code=worker.exitcode)
                stop(signal.SIGTERM, None)
                exit_code = 1
                continue
            # A crashed worker is replaced, so one bad request cannot shrink the pool for good.
            logger.error("worker exited, replacing it", pid=worker.pid, code=worker.exitcode)
            workers.append(spawn())
    if exit_code:
        raise SystemExit(exit_code)
