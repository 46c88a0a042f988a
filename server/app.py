"""The Starlette application: one GraphQL endpoint per platform, media, health."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import strawberry
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route, WebSocketRoute

from schema.supergraph import supergraph
from server.graphql_view import PlatformGraphQL
from server.runtime import Runtime, build_runtime
from server.settings import PLATFORMS, Settings


def graphql_routes(runtime: Runtime) -> list[BaseRoute]:
    """`/{platform}/graphql` for each platform, and `/graphql` for the default one."""
    paths = {f"/{platform}/graphql": platform for platform in PLATFORMS}
    paths["/graphql"] = runtime.settings.default_platform
    routes: list[BaseRoute] = []
    for path, platform in paths.items():
        view = PlatformGraphQL(runtime, platform)
        routes += [Route(path, view), WebSocketRoute(path, view)]
    return routes


def create_app(
    settings: Settings | None = None,
    schema: strawberry.Schema | None = None,
    subgraph: str | None = None,
) -> Starlette:
    """The app serving the monolith, or one subgraph when `subgraph` names it."""
    settings = settings or Settings()
    if schema is None and subgraph is not None:
        from schema.subgraphs import subgraph_schema

        schema = subgraph_schema(subgraph)
    runtime = build_runtime(settings, schema or supergraph())

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await runtime.close()

    app = Starlette(routes=graphql_routes(runtime), lifespan=lifespan)
    app.state.runtime = runtime
    return app
