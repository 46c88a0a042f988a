"""The GraphQL endpoint of one platform: strawberry's ASGI view with our context."""

from __future__ import annotations

import dataclasses
import uuid
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult

from datasources.registry import Loaders
from resolvers.context import Context, Viewer
from server import graphiql
from server.masking import Origin, client_errors
from server.observability import SCOPE_REQUEST_ID, exchange_of
from server.persisted import PersistedQueries
from server.runtime import Runtime

if TYPE_CHECKING:
    from subscriptions.server import Realtime

BEARER = "bearer "


class TokenRejected(Exception):
    """An Authorization header was sent but proves nothing on this platform."""


class PlatformGraphQL(GraphQL[Context, None]):
    """One instance per platform path; the platform is fixed before anything else."""

    def __init__(
        self, runtime: Runtime, platform: str, realtime: Realtime | None = None, **kwargs: Any
    ) -> None:
        super().__init__(
            runtime.schema,
            graphql_ide="graphiql" if runtime.settings.graphiql else None,
            multipart_uploads_enabled=True,
            **kwargs,
        )
        self.runtime = runtime
        self.platform = platform
        self.realtime = realtime  # websockets and HTTP subscriptions (subscriptions/)
        self.persisted = PersistedQueries(runtime.settings, runtime.stores.cache)

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
        client = client_address(request, self.runtime.settings.trusted_proxies)
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
        if scope["type"] == "websocket" and self.realtime is not None:
            await self.realtime.serve_websocket(scope, receive, send, self.platform)
            return
        if scope["type"] == "http":
            request = Request(scope, receive)
            try:
                scope["entativa.viewer"] = await self.viewer_from_header(
                    request.headers.get("authorization")
                )
            except TokenRejected as rejected:
                exchange_of(scope, self.platform).codes.append("UNAUTHENTICATED")
                await unauthenticated(str(rejected))(scope, receive, send)
                return
            if self.realtime is not None:  # a subscription streamed as SSE or multipart?
                handled, receive = await self.realtime.serve_http(
                    scope, receive, send, self.platform, scope["entativa.viewer"]
                )
                if handled:
                    return
        await super().__call__(scope, receive, send)

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our GraphiQL page (local assets, this path as endpoint), not strawberry's CDN one."""
        return graphiql.page(self.platform, request.url.path)

    async def execute_single(  # noqa: PLR0917
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Any,
        context: Any,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Resolves persisted queries (server/persisted.py) first; also notes the
        operation's name for the request's metrics and log line."""
        try:
            query = await self.persisted.resolve(request_data.query, request_data.extensions)
        except GraphQLError as refused:
            return ExecutionResult(data=None, errors=[refused])
        if query is not request_data.query:
            request_data = dataclasses.replace(request_data, query=query)
        result = await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )
        operation = context.extra.get("operation") or request_data.operation_name or ""
        exchange_of(request.scope, self.platform).operations.append(operation)
        return result

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """Masks what the schema's masking did not see (see server/masking.py); counts codes."""
        exchange = exchange_of(request.scope, self.platform)
        if result.errors:
            request_id = request.scope.get(SCOPE_REQUEST_ID) or uuid.uuid4().hex
            operation = exchange.operations[-1] if exchange.operations else None
            origin = Origin(request_id, self.platform, operation)
            result.errors = client_errors(result.errors, origin)
            exchange.codes += [str((error.extensions or {}).get("code")) for error in result.errors]
        return await super().process_result(request, result)


def client_address(request: Request | WebSocket, trusted_proxies: list[str]) -> str:
    """The client's address for per-address limits: the peer, or, when the peer is a
    trusted proxy, the nearest X-Forwarded-For hop that is not one (hops further left
    were written by the client itself and prove nothing)."""
    peer = request.client.host if request.client else "unknown"
    if peer not in trusted_proxies:
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([hop for hop in hops if hop]):
        if hop not in trusted_proxies:
            return hop
    return peer


def unauthenticated(message: str) -> Response:
    body = {
        "data": None,
        "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}],
    }
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
