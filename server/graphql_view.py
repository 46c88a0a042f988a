"""The GraphQL endpoint of one platform: strawberry's ASGI view with our context."""
from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from datasources.registry import Loaders
from resolvers.context import Context, Viewer
from server.runtime import Runtime

BEARER = "bearer "


class TokenRejected(Exception):
    """An Authorization header was sent but proves nothing on this platform."""


class PlatformGraphQL(GraphQL):
    """One instance per platform path; the platform is fixed before anything else."""

    def __init__(self, runtime: Runtime, platform: str, **kwargs: Any) -> None:
        super().__init__(
            runtime.schema,
            graphql_ide="graphiql" if runtime.settings.graphiql else None,
            multipart_uploads_enabled=True,
            **kwargs,
        )
        self.runtime = runtime
        self.platform = platform

    async def viewer_from_header(self, header: str | None) -> Viewer | None:
        if not header:
            return None
        if not header.lower().startswith(BEARER):
            raise TokenRejected("Authorization must be 'Bearer <access token>'")
        viewer = await self.runtime.authenticate(header[len(BEARER) :].strip(), self.platform)
        if viewer is None:
            raise TokenRejected("access token is invalid, expired or for another platform")
        return viewer

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        viewer = request.scope.get("entativa.viewer")
        request_id = request.scope.get("entativa.request_id") or uuid.uuid4().hex
        client = request.client.host if request.client else "unknown"
        return Context(
            platform=self.platform,
            viewer=viewer,
            settings=self.runtime.settings,
            stores=self.runtime.stores,
            loaders=Loaders(self.runtime.stores, self.platform),
            auth=self.runtime.auth,
            request_id=request_id,
            client_address=client,
            request=request,
            response=response,
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            try:
                scope["entativa.viewer"] = await self.viewer_from_header(
                    request.headers.get("authorization")
                )
            except TokenRejected as rejected:
                await unauthenticated(str(rejected))(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def unauthenticated(message: str) -> Response:
    body = {"data": None, "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]}
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
