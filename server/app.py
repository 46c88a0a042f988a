"""The Starlette application: one GraphQL endpoint per platform, media, health."""
from __future__ import annotations

import functools
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import strawberry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute

from schema.supergraph import supergraph
from server import hygiene, limits
from server.attachment_routes import attachment_routes
from server.graphiql import graphiql_routes
from server.graphql_view import PlatformGraphQL
from server.logs import configure_logging
from server.media_routes import media_routes
from server.observability import Metrics, ObserveRequests, ops_routes
from server.runtime import Runtime, build_runtime
from server.settings import PLATFORMS, Settings
from subscriptions.server import Realtime


def graphql_routes(runtime: Runtime, realtime: Realtime | None = None) -> list[BaseRoute]:
    """`/{platform}/graphql` for each platform, and `/graphql` for the default one
    (websockets too: subscriptions/, when `realtime` is given)."""
    paths = {f"/{platform}/graphql": platform for platform in PLATFORMS}
    paths["/graphql"] = runtime.settings.default_platform
    routes: list[BaseRoute] = []
    for path, platform in paths.items():
        view = PlatformGraphQL(runtime, platform, realtime=realtime)
        routes += [Route(path, view), WebSocketRoute(path, view)]
    return routes


GEN0_THRESHOLD = 100_000
"""Net allocations between two youngest-generation collections (CPython's default: 700)."""


@functools.cache  # once per process
def freeze_startup_objects() -> None:
    """Move everything alive after the first startup (modules, schemas, SQLAlchemy
    metadata: hundreds of thousands of objects) out of the cyclic GC's sight, and
    collect the youngest generation only when the heap really grows.

    They live as long as the process, yet every full collection walked them all
    again: ~1.7 ms of CPU per likePost under bench.likes' load (gc.callbacks), ~0.9 ms
    frozen. Garbage is collected first, so only live objects are frozen; once per
    process (tests start many apps in one process).

    The youngest generation's counter is allocations minus deallocations, reset at
    each collection. Under relay load (bench/messaging.py) it still reached a low
    threshold, because the requests in flight at a collection die after it and their
    deallocations are not counted: at 700 a collection ran every few hundred
    allocations, each walking every in-flight request's objects again; at 10,000
    one every ~70 messages, 4 ms each, 7-8% of the server's CPU (perf). Above the
    in-flight objects (~26,000 at 64 pairs) it is reached only when the heap grows,
    so under a steady load nothing is collected at all (0% of the CPU at 100,000).
    A request's objects are freed by reference counting when it ends (no cycles:
    tests/test_request_garbage.py), so collecting less often holds little.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, *gc.get_threshold()[1:])


def create_app(
    settings: Settings | None = None,
    schema: strawberry.Schema | None = None,
    subgraph: str | None = None,
) -> Starlette:
    """The app serving the monolith, or one subgraph when `subgraph` names it.

    A prebuilt `schema` should be built with `extensions=server.limits.extensions(settings)`
    to get the limits and caches; error masking applies to every schema regardless.
    """
    settings = settings or Settings()
    configure_logging(settings.log_level)
    extensions = limits.extensions(settings)
    if schema is None and subgraph is not None:
        from schema.subgraphs import subgraph_schema

        schema = subgraph_schema(subgraph, extensions=extensions)
    runtime = build_runtime(settings, schema or supergraph(extensions=extensions))
    metrics = Metrics()
    metrics.registry.register(runtime.stores.search_metrics.registry)  # search latency etc.
    realtime = Realtime(runtime)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await runtime.start()  # the outbox relay and consumers, when embedded
        await realtime.start()
        freeze_startup_objects()
        try:
            yield
        finally:
            await realtime.close()  # sockets closed with 1001 (if not done already)
            await runtime.close()

    routes = [
        *graphql_routes(runtime, realtime),
        *media_routes(runtime),
        *attachment_routes(runtime),
        *ops_routes(runtime, metrics),
    ]
    if settings.graphiql:
        routes += graphiql_routes()
    middleware = [
        *hygiene.middleware(settings),  # security headers, CORS
        Middleware(ObserveRequests, metrics=metrics),
        hygiene.body_limit(settings),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.runtime = runtime
    app.state.metrics = metrics
    app.state.realtime = realtime
    return app
