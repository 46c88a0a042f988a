"""The home feed on PostgreSQL: the graph against hand-written SQL, in-process and over HTTP.

    python -m bench.feed [--database-url URL] [--requests 400] [--rounds 3] [--seconds 5]
                         [--reseed]

Seeds (once; `--reseed` to redo) 2,000 users on Vignette, each following 200
others and with 100 posts (200,000 posts over the last 30 days, 10% FOLLOWERS-
only, every other one with an image), 80,000 comments on a fifth of them and
100,000 likes and 20,000 saves spread over everyone. Then asks for a feed page
of 20 posts with author, media, counts, viewerHasLiked, viewerHasSaved and the
first 2 comments with their authors:

- in-process: `schema.execute` with a fresh context per request (what a request
  costs without HTTP), against the same page computed with hand-written SQL
  (`text()` statements on the same engine: the page with its visibility filter,
  media, likes, saves, first comments) built into the same JSON-like data.
  Neither counts the feed: QUERY does not select totalCount, and the graph runs
  the capped count only for a query that does (as a hand-written endpoint would
  not count what it does not return). p50/p95 over `--requests` requests cycling
  through 200 viewers, and the CPU this process spent per request (PostgreSQL's
  own time excluded).
- over HTTP: one uvicorn worker each for the real app and for a Starlette
  endpoint running the hand-written SQL; p50/p95 of sequential requests, then
  throughput under bench/loadgen.py (16 connections, closed loop) in `--rounds`
  rounds of `--seconds` per server, the two taking turns (this machine's speed
  drifts by a third from minute to minute: measured one after the other, the
  ratio said more about the moment than about the code). Per server the round
  with the median throughput is reported, with every round; the ratio is the
  median of the rounds' ratios (a round's two servers ran seconds apart).

Targets (issue 3): graph feed p95 under 30 ms in-process; the graph at least half
the baseline's throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PLATFORM = "vignette"
USERS = 2_000
FOLLOWS_EACH = 200
POSTS_EACH = 100
VIEWERS = 200
DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/entativa_bench_feed"
SECRET = "bench-secret-key-that-is-long-enough-for-hs256"

QUERY = """
query Feed { feed(first: 20) { edges { node {
  id caption createdAt
  author { username displayName }
  media { mimeType width height }
  likeCount commentCount shareCount saveCount
  viewerHasLiked viewerHasSaved
  comments(first: 2) { edges { node { body author { username } } } }
} } } }
"""


# ── seeding (asyncpg COPY: a million rows in seconds) ─────────────────────


async def seed(url: str, reseed: bool) -> None:
    import asyncpg
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from datasources.migrate import upgrade

    name = make_url(url).database
    admin = create_async_engine(url.replace(f"/{name}", "/postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        exists = await conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        )
        if not exists:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
            reseed = True
    await admin.dispose()
    plain = url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(plain)
    try:
        if not reseed:
            seeded = await conn.fetchval(
                "SELECT to_regclass('posts') IS NOT NULL AND EXISTS (SELECT 1 FROM posts)"
            )
            if seeded:
                print("[bench] reusing the seeded database", flush=True)
                return
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    await upgrade(url)
    conn = await asyncpg.connect(plain)
    try:
        await _fill(conn)
    finally:
        await conn.close()


async def _fill(conn: Any) -> None:
    rng = random.Random(3)
    now = datetime.now(UTC)
    started = time.perf_counter()
    users = [
        (i, PLATFORM, f"user{i}", f"user{i}", f"user{i}@example.com", f"user{i}@example.com",
         "-", f"User {i}", False, False, FOLLOWS_EACH, FOLLOWS_EACH, now - timedelta(days=60))
        for i in range(1, USERS + 1)
    ]  # fmt: skip
    await conn.copy_records_to_table(
        "users",
        records=users,
        columns=["id", "platform", "username", "username_key", "email", "email_key",
                 "password_hash", "display_name", "is_private", "is_verified",
                 "follower_count", "following_count", "created_at"],
    )  # fmt: skip
    follows = []
    for user in range(1, USERS + 1):
        others = [o for o in rng.sample(range(1, USERS + 1), FOLLOWS_EACH + 1) if o != user]
        follows += [
            (user, other, True, now - timedelta(days=30)) for other in others[:FOLLOWS_EACH]
        ]
    await conn.copy_records_to_table(
        "follows", records=follows, columns=["follower_id", "followee_id", "approved", "created_at"]
    )
    posts, media, post_media = [], [], []
    post_id = 0
    for user in range(1, USERS + 1):
        for _ in range(POSTS_EACH):
            post_id += 1
            visibility = "FOLLOWERS" if rng.random() < 0.1 else "PUBLIC"
            at = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
            posts.append(
                (post_id, PLATFORM, user, f"post {post_id} #bench", '["bench"]', visibility,
                 rng.randint(0, 50), 0, 0, 0, at)
            )  # fmt: skip
            if post_id % 2 == 0:
                media.append(
                    (post_id, PLATFORM, user, "IMAGE", "image/png", 1000, "0" * 64, 10, 10,
                     f"bench/{post_id}", False, at)
                )  # fmt: skip
                post_media.append((post_id, 0, post_id))
    await conn.copy_records_to_table(
        "posts",
        records=posts,
        columns=["id", "platform", "author_id", "caption", "hashtags", "visibility",
                 "like_count", "comment_count", "share_count", "save_count", "created_at"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "media",
        records=media,
        columns=["id", "platform", "owner_id", "kind", "mime_type", "size_bytes", "sha256",
                 "width", "height", "blob_key", "has_thumbnail", "created_at"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "post_media", records=post_media, columns=["post_id", "position", "media_id"]
    )
    comments: list[tuple[Any, ...]] = []
    comment_counts: dict[int, int] = {}
    for pid in rng.sample(range(1, post_id + 1), len(posts) // 5):
        for _ in range(2):
            comments.append(
                (len(comments) + 1, PLATFORM, "post", pid, rng.randint(1, USERS),
                 f"comment on {pid}", 0, now - timedelta(seconds=rng.uniform(0, 86400)))
            )  # fmt: skip
            comment_counts[pid] = comment_counts.get(pid, 0) + 1
    await conn.copy_records_to_table(
        "comments",
        records=comments,
        columns=["id", "platform", "subject_type", "subject_id", "author_id", "body",
                 "like_count", "created_at"],
    )  # fmt: skip
    likes = {(rng.randint(1, post_id), rng.randint(1, USERS)) for _ in range(100_000)}
    await conn.copy_records_to_table(
        "post_likes",
        records=[(p, u, now) for p, u in likes],
        columns=["post_id", "user_id", "created_at"],
    )
    saves = {(rng.randint(1, USERS), rng.randint(1, post_id)) for _ in range(20_000)}
    await conn.copy_records_to_table(
        "post_saves",
        records=[(u, p, now) for u, p in saves],
        columns=["user_id", "post_id", "created_at"],
    )
    await conn.executemany(
        "UPDATE posts SET comment_count = $2 WHERE id = $1", list(comment_counts.items())
    )
    for table, column in (("users", "id"), ("posts", "id"), ("media", "id"), ("comments", "id")):
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
            f"(SELECT max({column}) FROM {table}))"
        )
    await conn.execute("ANALYZE")
    print(
        f"[bench] seeded {len(users)} users, {len(follows)} follows, {len(posts)} posts, "
        f"{len(comments)} comments, {len(likes)} likes in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


# ── the hand-written baseline ────────────────────────────────────────────

PAGE_SQL = """
SELECT p.id, p.caption, p.created_at, p.like_count, p.comment_count, p.share_count,
       p.save_count, u.username, u.display_name
FROM posts p JOIN users u ON u.id = p.author_id
WHERE p.platform = :platform
  AND p.author_id IN (SELECT followee_id FROM follows WHERE follower_id = :viewer AND approved
                      UNION SELECT :viewer)
  AND (p.author_id = :viewer OR (
        p.author_id NOT IN (SELECT blocked_id FROM blocks WHERE blocker_id = :viewer
                            UNION ALL SELECT blocker_id FROM blocks WHERE blocked_id = :viewer)
        AND (NOT u.is_private OR p.author_id IN (SELECT followee_id FROM follows
                                                 WHERE follower_id = :viewer AND approved))
        AND (p.visibility = 'PUBLIC'
             OR (p.visibility = 'FOLLOWERS' AND p.author_id IN (
                   SELECT followee_id FROM follows WHERE follower_id = :viewer AND approved)))))
ORDER BY p.created_at DESC, p.id DESC
LIMIT 21
"""
MEDIA_SQL = """
SELECT pm.post_id, m.mime_type, m.width, m.height FROM post_media pm
JOIN media m ON m.id = pm.media_id WHERE pm.post_id = ANY(:ids) ORDER BY pm.post_id, pm.position
"""
LIKED_SQL = "SELECT post_id FROM post_likes WHERE user_id = :viewer AND post_id = ANY(:ids)"
SAVED_SQL = "SELECT post_id FROM post_saves WHERE user_id = :viewer AND post_id = ANY(:ids)"
COMMENTS_SQL = """
SELECT c.subject_id, c.body, u.username FROM (
  SELECT id, subject_id, body, author_id,
         row_number() OVER (PARTITION BY subject_id ORDER BY created_at, id) AS rn
  FROM comments WHERE subject_type = 'post' AND subject_id = ANY(:ids) AND parent_id IS NULL
) c JOIN users u ON u.id = c.author_id WHERE c.rn <= 2 ORDER BY c.subject_id, c.rn
"""


async def baseline_feed(db: Any, viewer: int) -> dict[str, Any]:
    """The same page and fields as QUERY, by hand (text SQL on the app's engine)."""
    from sqlalchemy import text

    from resolvers.ids import encode_id

    async with db.session() as session:
        params = {"platform": PLATFORM, "viewer": viewer}
        rows = (await session.execute(text(PAGE_SQL), params)).all()[:20]
        ids = [row.id for row in rows]
        media: dict[int, list[dict[str, Any]]] = {}
        for row in await session.execute(text(MEDIA_SQL), {"ids": ids}):
            media.setdefault(row.post_id, []).append(
                {"mimeType": row.mime_type, "width": row.width, "height": row.height}
            )
        liked = {
            r[0] for r in await session.execute(text(LIKED_SQL), {"viewer": viewer, "ids": ids})
        }
        saved = {
            r[0] for r in await session.execute(text(SAVED_SQL), {"viewer": viewer, "ids": ids})
        }
        comments: dict[int, list[dict[str, Any]]] = {}
        for row in await session.execute(text(COMMENTS_SQL), {"ids": ids}):
            comments.setdefault(row.subject_id, []).append(
                {"node": {"body": row.body, "author": {"username": row.username}}}
            )
    edges = [
        {
            "node": {
                "id": encode_id("Post", row.id),
                "caption": row.caption,
                "createdAt": row.created_at.astimezone(UTC).isoformat(),
                "author": {"username": row.username, "displayName": row.display_name},
                "media": media.get(row.id, []),
                "likeCount": row.like_count,
                "commentCount": row.comment_count,
                "shareCount": row.share_count,
                "saveCount": row.save_count,
                "viewerHasLiked": row.id in liked,
                "viewerHasSaved": row.id in saved,
                "comments": {"edges": comments.get(row.id, [])},
            }
        }
        for row in rows
    ]
    return {"feed": {"edges": edges}}


# ── in-process ───────────────────────────────────────────────────────────


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


async def in_process(url: str, requests: int) -> dict[str, tuple[float, float, float]]:
    """p50 and p95 wall ms and CPU ms per request (this process's CPU: the database's
    time is not in it), for the graph and for the hand-written SQL."""
    from datasources.registry import Loaders
    from resolvers.context import Context, Viewer
    from server.app import create_app
    from server.settings import Settings

    settings = Settings(database_url=url, secret_key=SECRET, log_level="WARNING")
    app = create_app(settings)
    runtime = app.state.runtime
    viewers = list(range(1, VIEWERS + 1))

    async def graph(viewer: int) -> Any:
        context = Context(
            platform=PLATFORM,
            viewer=Viewer(viewer, PLATFORM, "bench"),
            settings=settings,
            stores=runtime.stores,
            loaders=Loaders(runtime.stores, PLATFORM),
            auth=runtime.auth,
            request_id="bench",
        )
        result = await runtime.schema.execute(QUERY, context_value=context, operation_name="Feed")
        if result.errors:
            raise SystemExit(f"graph errors: {result.errors}")
        return result.data

    # The two must agree before their timings mean anything.
    for viewer in viewers[:5]:
        ours, theirs = await graph(viewer), await baseline_feed(runtime.stores.db, viewer)
        if json.loads(json.dumps(ours, default=str)) != json.loads(json.dumps(theirs)):
            raise SystemExit(f"graph and baseline differ for viewer {viewer}")
    results = {}
    for name, call in (
        ("graph", graph),
        ("baseline", lambda v: baseline_feed(runtime.stores.db, v)),
    ):
        for viewer in viewers[:20]:  # warm up
            await call(viewer)
        samples = []
        cpu_started = time.process_time()
        for i in range(requests):
            started = time.perf_counter()
            await call(viewers[i % len(viewers)])
            samples.append(time.perf_counter() - started)
        cpu_ms = (time.process_time() - cpu_started) / requests * 1000
        results[name] = (*percentiles(samples), cpu_ms)
    await runtime.close()
    return results


# ── over HTTP ────────────────────────────────────────────────────────────


def baseline_app(url: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from schema.supergraph import supergraph
    from server.runtime import build_runtime
    from server.settings import Settings

    runtime = build_runtime(Settings(database_url=url, secret_key=SECRET), supergraph())

    async def feed(request: Request) -> JSONResponse:
        await request.json()
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        viewer = await runtime.authenticate(token, PLATFORM)
        if viewer is None:
            return JSONResponse({"errors": [{"message": "unauthenticated"}]}, status_code=401)
        return JSONResponse({"data": await baseline_feed(runtime.stores.db, viewer.user_id)})

    return Starlette(routes=[Route("/baseline", feed, methods=["POST"])])


def serve(kind: str, port: int, url: str) -> None:
    import uvicorn

    from server.app import create_app
    from server.settings import Settings

    settings = Settings(database_url=url, secret_key=SECRET, log_level="WARNING")
    app = create_app(settings) if kind == "graph" else baseline_app(url)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def tokens(url: str) -> list[str]:
    from server.app import create_app
    from server.settings import Settings

    app = create_app(Settings(database_url=url, secret_key=SECRET, log_level="WARNING"))
    runtime = app.state.runtime
    issued = [
        (await runtime.auth.start_session(viewer, PLATFORM)).access_token for viewer in range(1, 21)
    ]
    await runtime.close()
    return issued


def over_http(
    url: str, requests: int, seconds: float, rounds: int = 3
) -> dict[str, dict[str, Any]]:
    """Sequential latency of each server, then `rounds` rounds of load on each in turn
    (the two alternate, so a busy moment of this machine does not fall on one only);
    per server the round with the median throughput, and every round."""
    import httpx

    from bench.followers_query import free_port, load, wait_until_listening

    issued = asyncio.run(tokens(url))
    env = {**os.environ, "ENTATIVA_LOG_LEVEL": "WARNING"}
    ports = {"graph": free_port(), "baseline": free_port()}
    servers = {
        kind: subprocess.Popen(
            [sys.executable, "-m", "bench.feed", "--serve", kind, str(port), url], env=env
        )
        for kind, port in ports.items()
    }
    urls = {
        "graph": f"http://127.0.0.1:{ports['graph']}/{PLATFORM}/graphql",
        "baseline": f"http://127.0.0.1:{ports['baseline']}/baseline",
    }
    body = json.dumps({"query": QUERY}).encode()
    results: dict[str, dict[str, Any]] = {}
    try:
        for kind, process in servers.items():
            wait_until_listening(ports[kind], process)
        with tempfile.TemporaryDirectory() as tmp, httpx.Client() as client:
            body_file = Path(tmp) / "feed.json"
            body_file.write_bytes(body)
            for kind, target in urls.items():
                samples = []
                for i in range(requests + 20):
                    headers = {
                        "Authorization": f"Bearer {issued[i % len(issued)]}",
                        "Content-Type": "application/json",
                    }
                    started = time.perf_counter()
                    response = client.post(target, content=body, headers=headers)
                    elapsed = time.perf_counter() - started
                    if response.status_code != 200 or "errors" in response.json():
                        raise SystemExit(f"{kind}: {response.status_code} {response.text[:500]}")
                    if i >= 20:
                        samples.append(elapsed)
                p50, p95 = percentiles(samples)
                results[kind] = {"p50": p50, "p95": p95, "rounds": []}
                load(target, body_file, issued[0], min(2.0, seconds), 16)  # warm up
            for number in range(1, rounds + 1):
                for kind, target in urls.items():
                    print(f"[bench] round {number}/{rounds}: {kind}, {seconds:.0f} s", flush=True)
                    results[kind]["rounds"].append(load(target, body_file, issued[0], seconds, 16))
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(timeout=10)
    for result in results.values():
        measured = result["rounds"]
        result.update(sorted(measured, key=lambda r: r["rps"])[len(measured) // 2])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=5, help="per round and server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("ENTATIVA_DATA_DIR", tempfile.mkdtemp(prefix="entativa-bench-"))
    asyncio.run(seed(args.database_url, args.reseed))
    local = asyncio.run(in_process(args.database_url, args.requests))
    remote = over_http(args.database_url, args.requests, args.seconds, args.rounds)

    print("\nfeed(first: 20) with author, media, counts, viewer flags, first 2 comments;")
    print(f"PostgreSQL, {USERS} users x {FOLLOWS_EACH} follows, {USERS * POSTS_EACH} posts\n")
    print(f"in-process ({args.requests} requests, {VIEWERS} viewers)   p50 ms   p95 ms   CPU ms")
    for kind, (p50, p95, cpu) in local.items():
        print(f"  {kind:34} {p50:8.2f} {p95:8.2f} {cpu:8.2f}")
    ratio = local["baseline"][1] / local["graph"][1]
    print(f"  graph p95 target < 30 ms: {'met' if local['graph'][1] < 30 else 'MISSED'}; "
          f"baseline/graph p95 {ratio:.2f}")  # fmt: skip
    print("\nover HTTP, one uvicorn worker each    p50 ms   p95 ms    req/s (16 conn)  p99 ms")
    for kind, r in remote.items():
        print(f"  {kind:34} {r['p50']:8.2f} {r['p95']:8.2f} {r['rps']:12.1f} {r['p99_ms']:9.2f}")
    for kind, r in remote.items():
        every = ", ".join(f"{m['rps']:.1f}" for m in r["rounds"])
        print(f"  {kind} req/s by round: {every}")
    rounds = zip(remote["graph"]["rounds"], remote["baseline"]["rounds"], strict=True)
    paired = [graph["rps"] / baseline["rps"] for graph, baseline in rounds]
    print(f"  graph/baseline by round: {', '.join(f'{r:.2f}' for r in paired)}")
    medians = remote["graph"]["rps"] / remote["baseline"]["rps"]
    print(f"  ratio of the median rounds' throughputs: {medians:.2f}")
    ratio = statistics.median(paired)
    print(f"  ratio graph/baseline throughput (median of the rounds' ratios): {ratio:.2f} "
          f"(target >= 0.50)")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
