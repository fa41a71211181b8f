"""A process's Prometheus registry on its own small HTTP server: `/metrics` and `/health`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import structlog
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

log = structlog.get_logger()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return  # scrapes every 15 s would drown the log


def server(registry: CollectorRegistry, host: str, port: int) -> ThreadingWSGIServer:
    """An HTTP server for `/metrics` (prometheus_client's exposition) and `/health`
    (liveness only: it never collects). Call serve_forever on it."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body: Iterable[bytes] = metrics_app(environ, start_response)
            return body
        if path == "/health":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status": "ok"}']
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error": "not found"}']

    httpd = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    httpd.daemon_threads = True
    return httpd


@contextmanager
def serving(registry: CollectorRegistry, host: str, port: int, name: str) -> Iterator[int]:
    """Serve `registry` in a background thread for the duration of the block; yields the
    port (useful with port 0)."""
    httpd = server(registry, host, port)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True, name=f"{name}-metrics")
    thread.start()
    bound = int(httpd.server_address[1])
    log.info(f"{name}.metrics_serving", address=f"{host}:{bound}")
    try:
        yield bound
    finally:
        httpd.shutdown()
        httpd.server_close()
