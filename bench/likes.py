"""likePost mutations per second with 32 concurrent clients, against a plain INSERT.

    python -m bench.likes [--database-url URL] [--seconds 10] [--clients 32]

Seeds (each run, in its own PostgreSQL database) 1,000 users and 200 posts on
Vignette, then serves, each on one uvicorn worker in its own process:

- graph: the real app; each request is `likePost(postId)` by one user, returning
  `{ id likeCount viewerHasLiked }`: token check, visibility policy, insert-ignore,
  the exact counter update and the outbox event in one transaction.
- baseline: a Starlette endpoint that checks the same token and runs one plain
  `INSERT INTO post_likes … ON CONFLICT DO NOTHING` (no counter, no event).

32 client tasks (this process, httpx, keep-alive) send requests in a closed loop
for `--seconds`; every request likes a (user, post) pair not liked before, so each
one really writes. Prints requests/s, p50/p99 latency and the ratio graph/baseline
(issue 3's target: at least 0.5). The relay runs inside the graph's process, as in
the embedded default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

PLATFORM = "vignette"
USERS = 1_000
POSTS = 200
DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/entativa_bench_likes"
SECRET = "bench-secret-key-that-is-long-enough-for-hs256"
LIKE = "mutation($p: ID!) { likePost(postId: $p) { id likeCount viewerHasLiked } }"


async def seed(url: str) -> tuple[list[str], list[str]]:
    """A fresh database: users (with access tokens) and posts; their tokens and post ids."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from datasources.migrate import upgrade
    from datasources.posts.records import NewPost
    from resolvers.ids import encode_id
    from server.app import create_app
    from server.settings import Settings

    name = make_url(url).database
    admin = create_async_engine(url.replace(f"/{name}", "/postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    await upgrade(url)
    app = create_app(Settings(database_url=url, secret_key=SECRET, log_level="WARNING"))
    runtime = app.state.runtime
    tokens, posts = [], []
    author = await runtime.stores.users.create(PLATFORM, "author", "a@example.com", "-", "A")
    for i in range(POSTS):
        post = await runtime.stores.posts.create(
            NewPost(PLATFORM, author.id, f"post {i}", (), "PUBLIC")
        )
        posts.append(encode_id("Post", post.id))
    for i in range(USERS):
        user = await runtime.stores.users.create(
            PLATFORM, f"user{i}", f"user{i}@example.com", "-", f"User {i}"
        )
        tokens.append((await runtime.auth.start_session(user.id, PLATFORM)).access_token)
    await runtime.close()
    return tokens, posts


def baseline_app(url: str) -> Any:
    from sqlalchemy import text
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from resolvers.ids import decode_id
    from schema.supergraph import supergraph
    from server.runtime import build_runtime
    from server.settings import Settings

    runtime = build_runtime(Settings(database_url=url, secret_key=SECRET), supergraph())
    insert = text(
        "INSERT INTO post_likes (post_id, user_id, created_at) VALUES (:p, :u, now()) "
        "ON CONFLICT DO NOTHING"
    )

    async def like(request: Request) -> JSONResponse:
        body = await request.json()
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        viewer = await runtime.authenticate(token, PLATFORM)
        if viewer is None:
            return JSONResponse({"errors": [{"message": "unauthenticated"}]}, status_code=401)
        post_id = decode_id(body["variables"]["p"], "Post")
        async with runtime.stores.db.transaction() as session:
            await session.execute(insert, {"p": post_id, "u": viewer.user_id})
        return JSONResponse({"data": {"likePost": {"id": body["variables"]["p"]}}})

    return Starlette(routes=[Route("/baseline", like, methods=["POST"])])


def serve(kind: str, port: int, url: str) -> None:
    import uvicorn

    from server.app import create_app
    from server.settings import RateLimits, Settings

    # The 1,000 users all come from this one address: its allowance (5 users' worth by
    # default) is raised, so every like is a write and none is a cheap RATE_LIMITED
    # answer; each user's own bucket is still checked on every request.
    limits = RateLimits(signed_in_address_factor=float(USERS))
    settings = Settings(
        database_url=url, secret_key=SECRET, log_level="WARNING", rate_limits=limits
    )
    app = create_app(settings) if kind == "graph" else baseline_app(url)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def drive(
    target: str, tokens: list[str], posts: list[str], seconds: float, clients: int, offset: int
) -> dict[str, float]:
    """Closed loop: `clients` tasks, each liking fresh (user, post) pairs until time is up."""
    import httpx

    pairs = ((t, p) for p in posts[offset:] + posts[:offset] for t in tokens)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                token, post = next(pairs)
                body = json.dumps({"query": LIKE, "variables": {"p": post}})
                started = time.perf_counter()
                response = await client.post(
                    target,
                    content=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                    },
                )
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200 or "errors" in response.json():
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "errors": errors,
        "rps": len(ordered) / elapsed,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
    }


async def check(url: str, posts: list[str]) -> dict[str, Any]:
    """After the run: likeCount equals the like rows of every post (the counters are exact)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM post_likes) AS likes, "
            "(SELECT coalesce(sum(like_count), 0) FROM posts) AS counted, "
            "(SELECT count(*) FROM outbox WHERE topic LIKE '%posts') AS events"
        )
        return dict(row)
    finally:
        await conn.close()


def main() -> None:
    from bench.followers_query import free_port, wait_until_listening

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("ENTATIVA_DATA_DIR", tempfile.mkdtemp(prefix="entativa-bench-"))
    print("[bench] seeding", flush=True)
    tokens, posts = asyncio.run(seed(args.database_url))
    env = {**os.environ, "ENTATIVA_LOG_LEVEL": "WARNING"}
    ports = {"graph": free_port(), "baseline": free_port()}
    servers = {
        kind: subprocess.Popen(
            [sys.executable, "-m", "bench.likes", "--serve", kind, str(port), args.database_url],
            env=env,
        )
        for kind, port in ports.items()
    }
    urls = {
        "graph": f"http://127.0.0.1:{ports['graph']}/{PLATFORM}/graphql",
        "baseline": f"http://127.0.0.1:{ports['baseline']}/baseline",
    }
    results = {}
    try:
        for kind, process in servers.items():
            wait_until_listening(ports[kind], process)
        half = len(posts) // 2  # the two runs like disjoint halves of the posts
        for offset, (kind, target) in zip((0, half), urls.items(), strict=True):
            print(f"[bench] {kind}: {args.seconds:.0f} s, {args.clients} clients", flush=True)
            results[kind] = asyncio.run(
                drive(target, tokens, posts, args.seconds, args.clients, offset)
            )
            if kind == "graph":
                results["after_graph"] = asyncio.run(check(args.database_url, posts))
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(timeout=10)

    print(f"\nlikePost over HTTP, one uvicorn worker each, PostgreSQL, {args.clients} clients")
    print(f"{'':10} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}")
    for kind in ("graph", "baseline"):
        r = results[kind]
        print(f"{kind:10} {r['rps']:9.1f} {r['p50_ms']:9.2f} {r['p99_ms']:9.2f} {r['errors']:7d}")
    ratio = results["graph"]["rps"] / results["baseline"]["rps"]
    print(f"ratio graph/baseline throughput: {ratio:.2f} (target >= 0.50)")
    after = results["after_graph"]
    print(f"after the graph's run: {after['likes']} like rows, likeCount sum {after['counted']}, "
          f"{after['events']} post events in the outbox")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
