"""Structured logs (``LOG_FORMAT=json``): one JSON line per record, one per request, one per job.

A request's line carries its id (``X-Request-Id`` when a proxy sent a sane one, else a new
one, echoed back), the method, the path with its token redacted (funding.security.TokenRedactor:
no login, pledge or export token reaches a log), the status and the time taken; never a query
string's token, a header, a cookie or a body. A job's line carries the worker's id, the job,
what it did and its time. An expected refusal (a 4xx, a 503 while the database is away) is
one line, not a traceback (funding.ops.outage).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Attributes every LogRecord has: the rest were passed in ``extra`` and go into the line.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
access = logging.getLogger("funding.access")
jobs_log = logging.getLogger("funding.jobs")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(log_format: str) -> None:
    """JSON lines on stderr for every logger (uvicorn's own access line then gives way to ours)."""
    if log_format != "json":
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def job_line(worker: str, job: str, done: int, seconds: float) -> None:
    jobs_log.info("job %s: %s", job, done, extra={"worker": worker, "job": job, "done": done,
                                                   "ms": round(seconds * 1000, 1)})


class AccessLog:
    """One line per request (JSON logs only), after its answer is sent."""

    def __init__(self, app: ASGIApp, *, redact):
        self.app = app
        self.redact = redact

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), "")
        request_id = given if _REQUEST_ID.match(given) else secrets.token_hex(8)
        status, size, started = 0, 0, time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = self.redact(scope.get("path", ""))
            access.info("%s %s %s", scope["method"], path, status or "-", extra={
                "request_id": request_id, "method": scope["method"], "path": path, "status": status,
                "bytes": size, "ms": round((time.perf_counter() - started) * 1000, 1)})
