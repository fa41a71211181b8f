"""One log stream per process: the service's structlog events and every library's stdlib
records (uvicorn, alembic, urllib3, litestar) through one handler and one renderer, JSON
lines in containers and readable lines in a terminal, each line written whole."""

from __future__ import annotations

import logging
import sys

import structlog

# Libraries whose INFO lines say nothing an operator needs: alembic's plugin set-up and
# "Context impl SQLiteImpl" on every readiness check, and a line per provider connection.
QUIET = ("alembic", "urllib3", "httpx", "httpcore")


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and the stdlib root logger to stderr through one formatter. Safe to
    call again (a process that configures before uvicorn starts and again in its factory)."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        # Records from the stdlib (uvicorn, alembic …) get the same fields as our events.
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers (when it configured any) give way to the root's; its access
        # log stays wherever uvicorn's access_log put it (off, for the gateway).
        logging.getLogger(name).handlers.clear()
        if name != "uvicorn.access":
            logging.getLogger(name).propagate = True
    # A line per provider call is noise at INFO (every call is a row in payment_attempts and
    # a count in nilecare_provider_requests_total); DEBUG still shows them.
    if logging.getLevelName(level) > logging.DEBUG:
        for name in QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)
