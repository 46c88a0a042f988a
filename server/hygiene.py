"""HTTP hygiene around the whole app: security headers, CORS, request body caps.

- Security headers on every response: `nosniff`, no referrer, no framing, and a
  Content-Security-Policy that allows nothing (the API serves JSON and bytes, never a
  page) unless the response set its own (the GraphiQL page does: server/graphiql).
  In production, HSTS too.
- CORS (starlette's CORSMiddleware) only for `cors_origins`; with none, browsers on
  other origins get no CORS headers and so cannot read responses.
- A request body that is not a multipart upload is read up to `max_request_bytes` and
  refused past it with 413 and a GraphQL-shaped PAYLOAD_TOO_LARGE error, before the
  app parses any of it. A multipart upload may be as large as the largest media cap
  plus `max_request_bytes`; its Content-Length says so up front (each file's own cap
  is checked by resolvers/media/uploads.py), and a body longer than it announced or
  without a length is cut off at that size the same way.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resolvers.errors import PayloadTooLarge
from server.settings import Settings

NO_CONTENT_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
HSTS = "max-age=63072000; includeSubDomains"
CORS_HEADERS = [
    "authorization",
    "content-type",
    "x-request-id",
    "apollo-require-preflight",
    "apollographql-client-name",
    "apollographql-client-version",
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, production: bool = False) -> None:
        self.app = app
        self.headers: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"content-security-policy", NO_CONTENT_POLICY.encode()),
        ]
        if production:
            self.headers.append((b"strict-transport-security", HSTS.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def too_large(limit: int) -> JSONResponse:
    error = PayloadTooLarge(f"the request body is over {limit} bytes", limit=limit)
    body = {"data": None, "errors": [{"message": error.message, "extensions": error.extensions}]}
    return JSONResponse(body, status_code=413)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        upload = headers.get(b"content-type", b"").lower().startswith(b"multipart/")
        limit = self.max_upload_bytes if upload else self.max_bytes
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await too_large(limit)(scope, receive, send)
            return
        if upload:
            await self.upload(scope, receive, send, limit)
            return
        # Small by definition: read it all (the app would), refuse past the limit.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                await too_large(limit)(scope, receive, send)
                return
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def upload(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Streamed to the app (files are spooled, not held); past `limit` the app sees
        the client go away, stops reading, and the client gets the 413."""
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            return {"type": "http.disconnect"} if seen > limit else message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except ClientDisconnect:
            if seen <= limit or started:
                raise
        if seen > limit and not started:
            await too_large(limit)(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: every response (413s, CORS preflights) gets the headers."""
    stack = [Middleware(SecurityHeaders, production=settings.environment == "production")]
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=CORS_HEADERS,
                expose_headers=["x-request-id", "retry-after"],
                max_age=600,
            )
        )
    return stack


def body_limit(settings: Settings) -> Middleware:
    """Innermost (inside the request metrics, so a 413 is counted like any response)."""
    largest_media = max(
        settings.max_image_bytes, settings.max_video_bytes, settings.max_audio_bytes
    )
    return Middleware(
        BodyLimit,
        max_bytes=settings.max_request_bytes,
        max_upload_bytes=largest_media + settings.max_request_bytes,
    )
