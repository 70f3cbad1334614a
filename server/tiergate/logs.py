"""Logging: one JSON object per line on stdout (a readable rendering on a terminal), for our
own lines and every library's alike.

structlog renders everything: our loggers go through its processors straight to the stream
(a line per RPC is on every call's path; the standard library's records, caller lookup and
formatter would triple its cost), and the standard library's root logger (grpc, aiohttp,
asyncio, OpenTelemetry, the emulator, warnings) through structlog's ``ProcessorFormatter`` with
the same processors, so each line has ``level`` and ``logger``. Both write under the root
handler's lock, so lines from other threads never interleave. The configuration is a list of
processors, each a small callable; request text is never a field of any log line.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from typing import Any, TextIO

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

# Loggers whose repeats say nothing new: an unreachable collector makes the exporters log on
# every export and every retry. One line per interval is enough to say so.
QUIETED = ("opentelemetry",)
QUIET_INTERVAL_S = 600.0
# Per-request lines of the HTTP clients and the emulator's server repeat what the ``rpc`` line
# says; their warnings and errors still come through.
WARNINGS_ONLY = ("httpx", "httpx2", "httpcore", "httpcore2", "aiohttp.access")


def add_trace_ids(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """``trace_id`` and ``span_id`` of the current span, as structlog's OpenTelemetry recipe has
    it, so a log line leads to its trace; an unrecorded span's ids too (they still name the
    caller's trace)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


class LineWriter:
    """The logger structlog renders our lines into: one line each, written and flushed by the
    handler :func:`configure` installed last, under its lock. ``name`` is the ``logger``
    field."""

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        handler = _handler
        if handler is None:
            return
        with handler.lock or contextlib.nullcontext():
            handler.stream.write(message + "\n")
            handler.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


_handler: logging.StreamHandler[TextIO] | None = None
"""Where our lines go: the root logger's handler, installed by :func:`configure`."""


class OncePerInterval(logging.Filter):
    """Lets one record of the ``QUIETED`` loggers through per interval and counts the rest,
    reported on the next line let through."""

    def __init__(self, prefixes: tuple[str, ...], interval_s: float) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        prefix = next((p for p in self._prefixes if record.name.startswith(p)), None)
        if prefix is None:
            return True
        now = time.monotonic()
        with self._lock:
            if now < self._next.get(prefix, 0.0):
                self._suppressed[prefix] = self._suppressed.get(prefix, 0) + 1
                return False
            self._next[prefix] = now + self._interval_s
            suppressed = self._suppressed.pop(prefix, 0)
        if suppressed:
            record.suppressed = suppressed
        return True


def configure(
    *, level: str = "info", json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Set up logging for the process; ``json=None`` picks JSON unless ``stream`` (stdout by
    default) is a terminal."""
    out = sys.stdout if stream is None else stream
    as_json = not out.isatty() if json is None else json
    threshold = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    global _handler
    _handler = handler = logging.StreamHandler(out)

    def line_writer(*args: Any) -> LineWriter:
        return LineWriter(str(args[0]) if args else "tiergate")

    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=line_writer,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Lines of other libraries: their ``extra`` fields (e.g. ``suppressed``) kept.
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler.setFormatter(formatter)
    handler.addFilter(OncePerInterval(QUIETED, QUIET_INTERVAL_S))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(threshold)
    for name in WARNINGS_ONLY:
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING))
    # Python's warnings become log lines too, instead of bare text on stderr.
    logging.captureWarnings(True)
