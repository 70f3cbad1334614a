"""Logging: structlog, one JSON object per line on stdout (a readable rendering on a terminal).

The configuration is a list of processors, each a small callable; request text is never a
field of any log line.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import Processor


def configure(*, level: str = "info", json: bool | None = None) -> None:
    """Set up structlog for the process; ``json=None`` picks JSON unless stdout is a terminal."""
    as_json = not sys.stdout.isatty() if json is None else json
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
