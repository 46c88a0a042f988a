"""JSON logs, one object per line, and the request id that ties a request's lines together.

Log shippers (Loki, CloudWatch, Elasticsearch) parse one JSON object per line without
configuration; the fields a request adds (`request_id`, `platform`, `operation`,
`duration_ms`…) are passed as `extra=` and become top-level keys.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

LOGGER = "entativa"
REQUEST_ID_HEADER = "x-request-id"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# An incoming id is echoed into logs and headers: accept only short, printable tokens.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER}.{name}" if name else LOGGER)


def request_id(incoming: str | None) -> str:
    """The client's X-Request-Id if it is a sane token (tracing across services), else a new one."""
    if incoming and _SANE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now (test runners and daemons swap it)."""

    entativa_json = True

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """Send `entativa.*` records to stderr as JSON lines; safe to call once per app."""
    root = logger()
    root.setLevel(level.upper())
    if not any(getattr(handler, "entativa_json", False) for handler in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    # strawberry logs every GraphQL error (NOT_FOUND included) as a traceback without
    # our request id; internal errors are logged by server.masking instead.
    logging.getLogger("strawberry.execution").setLevel(logging.CRITICAL)
