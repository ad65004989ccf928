"""Process-wide logging: structlog events (and stdlib records from asyncpg, uvicorn, …) to stderr.

Ray keeps its own loggers (`ray.*` do not propagate once Ray is imported) and its log files.

JSON lines by default: `{"event": "shard.checkpointed", "level": "info", "timestamp": ISO-8601 UTC,
...}` plus whatever was bound with `structlog.contextvars.bind_contextvars` (e.g. `request_id`).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import structlog
import structlog.tracebacks

if TYPE_CHECKING:
    from core.settings import LogSettings

__all__ = ["configure_logging"]


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,  # request ids bound by the API middleware
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(log: LogSettings) -> None:
    """Route structlog and stdlib logging through one renderer on stderr at `log.level`."""
    level = logging.getLevelNamesMapping()[log.level]
    renderer: Any
    if log.json_logs:
        # Exceptions become structured data; never with frame locals, which may hold tokens or URLs.
        tracebacks = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        renderer = [structlog.processors.ExceptionRenderer(tracebacks), structlog.processors.JSONRenderer()]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]

    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    # Replace, not add: calling this twice (tests, Ray worker re-init) must not double every line.
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # pgserver narrates every embedded-server probe at INFO; only its problems matter to us.
    for chatty in _CHATTY_LIBRARIES:
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))


_CHATTY_LIBRARIES = ("pgserver",)
