"""Health, readiness, Prometheus metrics, and one JSON log line per request.

- `/healthz`: the process answers (liveness: restart me if this fails).
- `/readyz`: every configured store answers its `ping()` (readiness: send me traffic),
  as `Stores.readiness()` lists them: db, cache and broker (Redis when configured),
  search (Elasticsearch or the Tantivy directory), stories (MongoDB, when configured)
  and events (Kafka, when configured). 503 names the ones that failed. A store
  object without `readiness()` is checked by duck typing (every attribute with a
  `ping`). Readiness is not liveness: a Kafka outage makes the process unready (the
  outbox holds its events meanwhile) but never calls for a restart; `/healthz` does.
- `/metrics`: Prometheus text from a registry of this app's own (two apps in one process,
  as in tests, never share counters).

The request id: a sane incoming `X-Request-Id` is kept (tracing across services), else a
new one; it is in every log line of the request, in masked errors, and in the response's
`X-Request-Id` header. Metrics and the request log cover HTTP; websocket operations are
logged by their errors only.
"""
from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.logs import REQUEST_ID_HEADER, logger, request_id

if TYPE_CHECKING:
    from server.runtime import Runtime

READINESS_TIMEOUT_SECONDS = 3.0
MAX_OPERATION_LABELS = 500  # operation names are client-chosen: bound the label set
_OPERATION_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")
SCOPE_REQUEST_ID = "entativa.request_id"
SCOPE_EXCHANGE = "entativa.graphql"

log = logger("requests")


@dataclass
class Exchange:
    """What the GraphQL view learned about one HTTP request, read back by the middleware."""

    platform: str
    operations: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)


def exchange_of(scope: Scope, platform: str) -> Exchange:
    exchange = scope.get(SCOPE_EXCHANGE)
    if exchange is None:
        exchange = scope[SCOPE_EXCHANGE] = Exchange(platform)
    return exchange  # type: ignore[no-any-return]


def record_operation(context: Any, operation_name: str | None) -> None:
    """Puts the executed operation's name where the view (metrics, logs) can read it
    (run by server/limits.py `ServeOperation` once the document is parsed, and for
    operations sent over a socket by subscriptions/operations.py)."""
    extra = getattr(context, "extra", None)
    if isinstance(extra, dict):
        extra["operation"] = operation_name


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "entativa_graphql_requests",
            "GraphQL operations served over HTTP",
            ["platform", "operation"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "entativa_graphql_request_seconds",
            "Time to answer a GraphQL HTTP request",
            ["platform"],
            registry=self.registry,
        )
        self.errors = Counter(
            "entativa_graphql_errors",
            "GraphQL errors returned to clients, by extensions.code",
            ["code"],
            registry=self.registry,
        )
        self._operations: set[str] = set()

    def operation_label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if not _OPERATION_NAME.fullmatch(name):
            return "invalid"
        if name not in self._operations:
            if len(self._operations) >= MAX_OPERATION_LABELS:
                return "other"
            self._operations.add(name)
        return name

    def observe(self, exchange: Exchange, seconds: float) -> None:
        self.seconds.labels(exchange.platform).observe(seconds)
        for operation in exchange.operations or [""]:
            self.requests.labels(exchange.platform, self.operation_label(operation)).inc()
        for code in exchange.codes:
            self.errors.labels(code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ObserveRequests:
    """ASGI middleware: request id in, X-Request-Id out, timing, metrics, the request log line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = scope[SCOPE_REQUEST_ID] = request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-Id"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.finish(scope, rid, status, time.perf_counter() - started)

    def finish(self, scope: Scope, rid: str, status: int, seconds: float) -> None:
        fields: dict[str, Any] = {
            "request_id": rid,
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        exchange: Exchange | None = scope.get(SCOPE_EXCHANGE)
        if exchange is None:
            log.debug("http request", extra=fields)
            return
        self.metrics.observe(exchange, seconds)
        fields.update(
            platform=exchange.platform,
            operation=",".join(op or "anonymous" for op in exchange.operations) or None,
            errors=exchange.codes,
        )
        log.info("graphql request", extra=fields)


async def _ping(ping: Callable[[], Any]) -> None:
    outcome = ping()
    if inspect.isawaitable(outcome):
        await asyncio.wait_for(outcome, READINESS_TIMEOUT_SECONDS)


def _pings(stores: Any) -> dict[str, Callable[[], Any]]:
    readiness = getattr(stores, "readiness", None)
    if callable(readiness):
        return dict(readiness())
    return {
        name: store.ping
        for name, store in vars(stores).items()
        if callable(getattr(store, "ping", None))
    }


async def check_stores(stores: Any) -> dict[str, str]:
    """'ok' or why not, for every store `stores` is configured to use."""
    pingable = _pings(stores)
    outcomes = await asyncio.gather(
        *(_ping(ping) for ping in pingable.values()), return_exceptions=True
    )
    checks: dict[str, str] = {}
    for name, outcome in zip(pingable, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            log.warning("store not ready", extra={"store": name, "error": repr(outcome)})
            checks[name] = f"unavailable ({type(outcome).__name__})"
        else:
            checks[name] = "ok"
    return checks


def ops_routes(runtime: Runtime, metrics: Metrics) -> list[BaseRoute]:
    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        checks = await check_stores(runtime.stores)
        failed = [name for name, outcome in checks.items() if outcome != "ok"]
        body = {"status": "unavailable" if failed else "ok", "checks": checks, "failed": failed}
        return JSONResponse(body, status_code=503 if failed else 200)

    async def prometheus(_request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
