"""The foundation's followers query over HTTP: the graph against a plain endpoint.

    python -m bench.followers_query [--seconds 10] [--connections 16] [--database-url URL]

Seeds a viewer with 50 followers (each with an avatar; the viewer follows half of
them back), then serves, each on one uvicorn worker in its own process:

- graph: the real app, queried with
  `viewer { followers(first: 50) { edges { node { username followerCount
  avatar { url } viewerRelationship { following } } } } }`
- baseline: a plain Starlette JSON endpoint that does the same work by hand —
  the same token check and the same datasource calls (viewer by id, followers
  page, avatars by ids, relationships batch) — and returns the same JSON.

The ratio graph/baseline is the price of GraphQL (parse/validate, resolvers,
DataLoaders); the issue's target is a ratio of at least 0.5. The load generator
(bench/loadgen.py) runs in a third process, closed loop, keep-alive.
Default store: SQLite in a temporary directory; `--database-url` points it at
PostgreSQL: an empty database, where its tables are created and the rows seeded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PLATFORM = "vignette"
FOLLOWERS = 50
QUERY = (
    "{ viewer { followers(first: 50) { edges { node { username followerCount "
    "avatar { url } viewerRelationship { following } } } } } }"
)


# ── seeding ──────────────────────────────────────────────────────────────


async def seed(settings: Any) -> str:
    """The viewer, 50 followers with avatars; returns the viewer's access token."""
    from datasources.media.tables import MediaRow
    from datasources.migrate import upgrade
    from server.app import create_app

    await upgrade(settings.resolved_database_url)
    app = create_app(settings)
    runtime = app.state.runtime
    users = runtime.stores.users
    viewer = await users.create(PLATFORM, "viewer", "viewer@example.com", "-", "Viewer")
    for n in range(FOLLOWERS):
        name = f"follower{n:02d}"
        follower = await users.create(PLATFORM, name, f"{name}@example.com", "-", name)
        async with runtime.stores.db.transaction() as session:
            avatar = MediaRow(
                platform=PLATFORM, owner_id=follower.id, kind="IMAGE", mime_type="image/png",
                size_bytes=100, sha256="0" * 64, width=10, height=10, blob_key=f"bench/{name}",
            )  # fmt: skip
            session.add(avatar)
            await session.flush()
            avatar_id = avatar.id
        from datasources.users.store import ProfileChanges

        await users.update_profile(follower.id, ProfileChanges(avatar_media_id=avatar_id))
        await users.graph.follow(follower.id, viewer.id)
        if n % 2 == 0:
            await users.graph.follow(viewer.id, follower.id)
    session_tokens = await runtime.auth.start_session(viewer.id, PLATFORM)
    await runtime.close()
    return str(session_tokens.access_token)


# ── the two servers ──────────────────────────────────────────────────────


def baseline_app(settings: Any) -> Any:
    """The same reads and JSON by hand: no GraphQL, no resolvers, no DataLoaders."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from resolvers.media.urls import media_url
    from schema.supergraph import supergraph
    from server.runtime import build_runtime

    runtime = build_runtime(settings, supergraph())
    stores = runtime.stores
    secret = settings.signing_key

    async def followers(request: Request) -> JSONResponse:
        await request.json()
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        viewer = await runtime.authenticate(token, PLATFORM)
        if viewer is None:
            return JSONResponse({"errors": [{"message": "unauthenticated"}]}, status_code=401)
        me = (await stores.users.by_ids(PLATFORM, [viewer.user_id]))[viewer.user_id]
        page = await stores.users.graph.followers(
            PLATFORM, me.id, None, FOLLOWERS, hide_for=viewer.user_id
        )
        people = [item.user for item in page.items]
        avatar_ids = [p.avatar_media_id for p in people if p.avatar_media_id is not None]
        avatars, relationships = await asyncio.gather(  # as the graph's prefetch does
            stores.media.by_ids(PLATFORM, avatar_ids),
            stores.users.graph.relationships(me.id, [p.id for p in people]),
        )
        edges = []
        for person in people:
            avatar = avatars.get(person.avatar_media_id) if person.avatar_media_id else None
            avatar_url = media_url(settings.public_url, secret, avatar) if avatar else None
            relationship = relationships.get(person.id)
            node = {
                "username": person.username,
                "followerCount": person.follower_count,
                "avatar": {"url": avatar_url} if avatar_url else None,
                "viewerRelationship": {"following": bool(relationship and relationship.following)},
            }
            edges.append({"node": node})
        return JSONResponse({"data": {"viewer": {"followers": {"edges": edges}}}})

    return Starlette(routes=[Route("/baseline", followers, methods=["POST"])])


def serve(kind: str, port: int) -> None:
    """Child process: one uvicorn worker serving `kind` (graph or baseline)."""
    import uvicorn

    from server.app import create_app
    from server.settings import Settings

    settings = Settings()
    app = create_app(settings) if kind == "graph" else baseline_app(settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ── measuring ────────────────────────────────────────────────────────────


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listened on port {port} within {timeout:.0f} s")


def load(url: str, body_file: Path, token: str, seconds: float, connections: int) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "bench.loadgen", url, str(body_file),
        "--seconds", str(seconds), "--connections", str(connections),
        "--header", f"Authorization: Bearer {token}",
    ]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def check_same_answer(graph_url: str, baseline_url: str, body: bytes, token: str) -> None:
    """Both servers must return the same data, or the comparison means nothing."""
    import httpx

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    answers = [
        httpx.post(url, content=body, headers=headers).json() for url in (graph_url, baseline_url)
    ]
    edges = answers[0]["data"]["viewer"]["followers"]["edges"]
    if answers[0] != answers[1] or len(edges) != FOLLOWERS:
        raise SystemExit("graph and baseline answer differently:\n" + json.dumps(answers)[:2000])


def measure(
    name: str, url: str, body_file: Path, token: str, seconds: float, connections: int
) -> dict[str, Any]:
    print(
        f"[bench] {name}: warming up, then {seconds:.0f} s with {connections} connections",
        flush=True,
    )
    load(url, body_file, token, min(2.0, seconds), connections)
    return load(url, body_file, token, seconds, connections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="entativa-bench-") as tmp:
        env = {
            **os.environ,
            "ENTATIVA_DATA_DIR": tmp,
            "ENTATIVA_DATABASE_URL": args.database_url,
            "ENTATIVA_LOG_LEVEL": "WARNING",
            "ENTATIVA_DEFAULT_PLATFORM": PLATFORM,
        }
        os.environ.update(env)
        from server.settings import Settings

        print("[bench] seeding a viewer with 50 followers", flush=True)
        token = asyncio.run(seed(Settings()))
        body_file = Path(tmp) / "query.json"
        body_file.write_bytes(json.dumps({"query": QUERY}).encode())

        ports = {"graph": free_port(), "baseline": free_port()}
        servers = {
            kind: subprocess.Popen(
                [sys.executable, "-m", "bench.followers_query", "--serve", kind, str(port)], env=env
            )
            for kind, port in ports.items()
        }
        try:
            for kind, process in servers.items():
                wait_until_listening(ports[kind], process)
            urls = {
                "graph": f"http://127.0.0.1:{ports['graph']}/{PLATFORM}/graphql",
                "baseline": f"http://127.0.0.1:{ports['baseline']}/baseline",
            }
            check_same_answer(urls["graph"], urls["baseline"], body_file.read_bytes(), token)
            results = {
                kind: measure(kind, url, body_file, token, args.seconds, args.connections)
                for kind, url in urls.items()
            }
        finally:
            for process in servers.values():
                process.terminate()
                process.wait(timeout=10)
    report(results, args)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    store = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    print(f"\nfollowers(first: 50) over HTTP, one uvicorn worker, {store}, "
          f"{args.connections} connections, {args.seconds:.0f} s")  # fmt: skip
    print(f"{'':10} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}")
    for kind, r in results.items():
        print(f"{kind:10} {r['rps']:9.1f} {r['p50_ms']:9.2f} {r['p99_ms']:9.2f} {r['errors']:7d}")
    ratio = results["graph"]["rps"] / results["baseline"]["rps"]
    print(f"ratio graph/baseline throughput: {ratio:.2f} (target >= 0.50)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
