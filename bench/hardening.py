"""The overhead of cost analysis and persisted-query lookup on the home feed query.

    python -m bench.hardening [--database-url URL] [--requests 400] [--reseed]

The database of bench/feed.py (seeded by it, once: 2,000 users, 200,000 posts) and its
feed query (20 posts with author, media, counts, viewer flags, first 2 comments).
Two apps on the same database, requests through their ASGI apps (the GraphQL view,
where persisted queries are resolved, included; no sockets, so the difference is not
lost in network noise):

- off: `max_query_cost=0`, `persisted_queries=False`, the query text in each request;
- on: the default budget, APQ on, each request sending only the hash (registered once
  by the first request, then served from the per-process LRU).

The two alternate request by request (same viewer for each pair) so drift in the
database or the machine falls on both. Also timed alone: one cost analysis and one
APQ lookup of the feed query, in microseconds.

Target (issue 10): on/off overhead under 5%.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import tempfile
import time

from bench.feed import DEFAULT_URL, PLATFORM, QUERY, SECRET, seed, tokens

WARM_UP = 30


def _ms(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return statistics.median(ordered) * 1000, p95 * 1000, statistics.fmean(ordered) * 1000


async def through_the_apps(url: str, requests: int) -> dict[str, tuple[float, float, float]]:
    import httpx

    from server.app import create_app
    from server.settings import Settings

    issued = await tokens(url)
    base = Settings(database_url=url, secret_key=SECRET, log_level="WARNING")
    off = base.model_copy(update={"max_query_cost": 0, "persisted_queries": False})
    apps = {"off": create_app(off), "on": create_app(base)}
    sha256 = hashlib.sha256(QUERY.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256}}
    bodies = {
        "off": json.dumps({"query": QUERY}).encode(),
        "on": json.dumps({"extensions": persisted}).encode(),
    }
    clients = {
        kind: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
        for kind, app in apps.items()
    }
    path = f"/{PLATFORM}/graphql"
    try:
        # APQ: the first request with the hash alone is refused, the retry registers.
        headers = {"Authorization": f"Bearer {issued[0]}", "Content-Type": "application/json"}
        first = (await clients["on"].post(path, content=bodies["on"], headers=headers)).json()
        assert first["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND", first
        registering = json.dumps({"query": QUERY, "extensions": persisted}).encode()
        registered = await clients["on"].post(path, content=registering, headers=headers)
        assert "errors" not in registered.json(), registered.text

        samples: dict[str, list[float]] = {"off": [], "on": []}
        for i in range(requests + WARM_UP):
            headers = {
                "Authorization": f"Bearer {issued[i % len(issued)]}",
                "Content-Type": "application/json",
            }
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            for kind in order:
                started = time.perf_counter()
                response = await clients[kind].post(path, content=bodies[kind], headers=headers)
                elapsed = time.perf_counter() - started
                body = response.json()
                if response.status_code != 200 or "errors" in body:
                    raise SystemExit(f"{kind}: {response.status_code} {response.text[:500]}")
                if i >= WARM_UP:
                    samples[kind].append(elapsed)
    finally:
        for client in clients.values():
            await client.aclose()
        for app in apps.values():
            await app.state.runtime.close()
    return {kind: _ms(values) for kind, values in samples.items()}


async def alone(repeat: int = 2000) -> dict[str, float]:
    """Microseconds of one cost analysis and one (LRU) APQ lookup of the feed query."""
    from graphql import parse

    from datasources.cache import MemoryCache
    from schema.supergraph import supergraph
    from server.cost import check_cost
    from server.persisted import PersistedQueries
    from server.settings import Settings

    schema = supergraph()._schema
    document = parse(QUERY)
    started = time.perf_counter()
    for _ in range(repeat):
        assert check_cost(schema, document, "Feed", {}, 20_000) is None
    cost_us = (time.perf_counter() - started) / repeat * 1e6

    persisted = PersistedQueries(Settings(secret_key=SECRET), MemoryCache())
    sha256 = hashlib.sha256(QUERY.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256}}
    await persisted.resolve(QUERY, extensions)
    started = time.perf_counter()
    for _ in range(repeat):
        await persisted.resolve(None, extensions)
    lookup_us = (time.perf_counter() - started) / repeat * 1e6
    return {"cost analysis": cost_us, "APQ lookup (hash only)": lookup_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("ENTATIVA_DATA_DIR", tempfile.mkdtemp(prefix="entativa-bench-"))
    asyncio.run(seed(args.database_url, args.reseed))
    timed = asyncio.run(through_the_apps(args.database_url, args.requests))
    parts = asyncio.run(alone())

    print("\nfeed(first: 20) through the ASGI app (PostgreSQL, bench/feed.py data);")
    print(f"{args.requests} request pairs, alternating\n")
    print(f"  {'':44} p50 ms   p95 ms  mean ms")
    labels = {
        "off": "off (no cost analysis, query text)",
        "on": "on (cost analysis, APQ hash only)",
    }
    for kind, (p50, p95, mean) in timed.items():
        print(f"  {labels[kind]:44} {p50:8.2f} {p95:8.2f} {mean:8.2f}")
    overhead = (timed["on"][0] / timed["off"][0] - 1) * 100
    mean_overhead = (timed["on"][2] / timed["off"][2] - 1) * 100
    verdict = "met" if overhead < 5 else "MISSED"
    print(f"  overhead p50 {overhead:+.1f}%, mean {mean_overhead:+.1f}% (target < 5%: {verdict})")
    print()
    for name, micros in parts.items():
        share = micros / 1000 / timed["off"][0] * 100
        print(f"  {name:44} {micros:8.1f} µs ({share:.2f}% of the off p50)")


if __name__ == "__main__":
    main()
