"""Run a service: one process, or N worker processes sharing one listening socket.

With several workers, Prometheus multiprocess mode is switched on *before* the application module
(and so ``common.metrics``) is imported, and each dead worker's live gauges are cleaned up.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from typing import Any

from aiohttp import web

from common.config import ServiceSettings
from common.logging import setup_logging

AppFactory = Callable[[Any], web.Application]


def _load_factory(path: str) -> AppFactory:
    module_name, _, attr = path.partition(":")
    factory: AppFactory = getattr(importlib.import_module(module_name), attr)
    return factory


def _run_worker(factory_path: str, settings: ServiceSettings, sock: socket.socket) -> None:
    setup_logging(settings.service_name, settings.log_level)
    app = _load_factory(factory_path)(settings)
    web.run_app(app, sock=sock, print=None, access_log=None, shutdown_timeout=10)


def serve(factory_path: str, settings: ServiceSettings) -> None:
    """Serve ``module:create_app`` with ``settings`` until SIGINT/SIGTERM."""
    sock = socket.create_server((settings.host, settings.port), reuse_port=False, backlog=2048)
    if settings.workers == 1:
        _run_worker(factory_path, settings, sock)
        return

    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
        prefix=f"cloudops-{settings.service_name}-metrics-"
    )
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_run_worker, args=(factory_path, settings, sock), daemon=False)
        for _ in range(settings.workers)
    ]
    for worker in workers:
        worker.start()

    def stop(signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGINT)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    from prometheus_client import multiprocess  # after the env var is set

    for worker in workers:
        worker.join()
        if worker.pid is not None:
            multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
    sock.close()
