"""The home feed through the federation gateway against the monolith, over HTTP.

    python -m bench.gateway [--database-url URL] [--redis-url URL] [--requests 200]
                            [--rounds 5] [--seconds 5] [--connections 16] [--reseed]

The database of bench/feed.py (seeded by it, once: 2,000 users, 200,000 posts) and its
feed query (20 posts with author, media, counts, viewer flags, first 2 comments with
their authors), asked of two deployments on the same database and Redis:

- gateway: every subgraph as its own `entativa serve --subgraph NAME` process (one
  uvicorn worker each) and `@apollo/gateway` (tests/interop/gateway.mjs, one Node
  process) composing them; the feed's plan fetches from posts, then users and media;
- monolith: one `entativa serve` process (one uvicorn worker).

Both must answer the same before anything is timed. Then p50/p99 of `--requests`
sequential requests to each (latency without queueing; the two alternate request by
request), and requests/s with p99 under bench/loadgen.py (`--connections`
connections, closed loop) in `--rounds` rounds of `--seconds` per target, the targets
taking turns; the round with the median throughput is reported, with every round's.
Needs node and tests/interop's packages (`npm ci` there).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.feed import DEFAULT_URL, PLATFORM, QUERY, SECRET, seed, tokens
from bench.followers_query import load

WARM_UP = 20


def sequential(
    urls: dict[str, str], body: bytes, issued: list[str], requests: int
) -> dict[str, dict[str, float]]:
    """p50/p99 of one request at a time, the targets alternating request by request
    (same viewer for each pair) so drift in the machine falls on both."""
    import httpx

    samples: dict[str, list[float]] = {kind: [] for kind in urls}
    with httpx.Client(timeout=30) as client:
        for i in range(WARM_UP + requests):
            headers = {
                "Authorization": f"Bearer {issued[i % len(issued)]}",
                "Content-Type": "application/json",
            }
            for kind, url in urls.items():
                started = time.perf_counter()
                response = client.post(url, content=body, headers=headers)
                elapsed = time.perf_counter() - started
                if response.status_code != 200 or "errors" in response.json():
                    raise SystemExit(f"{kind}: {response.status_code} {response.text[:500]}")
                if i >= WARM_UP:
                    samples[kind].append(elapsed)
    found = {}
    for kind, taken in samples.items():
        ordered = sorted(taken)
        found[kind] = {
            "seq_p50_ms": statistics.median(ordered) * 1000,
            "seq_p99_ms": ordered[int(0.99 * (len(ordered) - 1))] * 1000,
        }
    return found


def check_same_answer(urls: dict[str, str], body: bytes, issued: list[str]) -> None:
    """Each viewer's page must be the same from both, or the timings mean nothing."""
    import httpx

    for token in issued[:5]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        answers = [
            httpx.post(url, content=body, headers=headers, timeout=30).json()
            for url in urls.values()
        ]
        if answers[0] != answers[1] or "errors" in answers[0]:
            raise SystemExit(
                "gateway and monolith answer differently:\n" + json.dumps(answers)[:2000]
            )
        if len(answers[0]["data"]["feed"]["edges"]) != 20:
            raise SystemExit(f"expected a page of 20 posts: {json.dumps(answers[0])[:500]}")


def measure(urls: dict[str, str], args: argparse.Namespace, issued: list[str]) -> dict[str, Any]:
    """Sequential latency, then `--rounds` rounds of load on each target in turn; per
    target the round with the median throughput is reported (rounds alternate so a
    busy moment of the machine does not fall on one target only)."""
    body = json.dumps({"query": QUERY}).encode()
    check_same_answer(urls, body, issued)
    print(f"[bench] {args.requests} sequential requests to each, alternating", flush=True)
    latency = sequential(urls, body, issued, args.requests)
    rounds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in urls}
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "feed.json"
        body_file.write_bytes(body)
        for url in urls.values():  # warm up
            load(url, body_file, issued[0], 2.0, args.connections)
        for number in range(1, args.rounds + 1):
            for kind, url in urls.items():
                print(
                    f"[bench] round {number}/{args.rounds}: {kind}, {args.seconds:.0f} s "
                    f"with {args.connections} connections",
                    flush=True,
                )
                rounds[kind].append(load(url, body_file, issued[0], args.seconds, args.connections))
    results: dict[str, Any] = {}
    for kind, measured in rounds.items():
        middle = sorted(measured, key=lambda r: r["rps"])[len(measured) // 2]
        results[kind] = {**latency[kind], **middle, "rounds": [r["rps"] for r in measured]}
    return results


def main() -> None:
    from tests.deployment_support import (
        DeploymentError,
        environment,
        launch,
        missing_interop,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/12", help="'' for the in-process cache"
    )
    parser.add_argument("--seconds", type=float, default=5, help="per round and target")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    node = shutil.which("node")
    if (missing := missing_interop()) is not None or node is None:
        raise SystemExit(f"bench.gateway needs the gateway: {missing}")
    from datasources.migrate import upgrade
    from schema.domains import DOMAINS

    asyncio.run(seed(args.database_url, args.reseed))
    asyncio.run(upgrade(args.database_url))  # a reused database may predate a migration
    issued = asyncio.run(tokens(args.database_url))
    with tempfile.TemporaryDirectory(prefix="entativa-bench-") as tmp:
        env = environment(
            database_url=args.database_url,
            redis_url=args.redis_url,
            data_dir=tmp,
            secret_key=SECRET,
            log_level="WARNING",
            rate_limits='{"enabled": false}',  # one token under load, on both sides
        )
        print(
            f"[bench] starting {len(DOMAINS)} subgraphs, the gateway and the monolith", flush=True
        )
        try:
            with launch(node, env, Path(tmp), DOMAINS, platform=PLATFORM) as deployment:
                urls = {"gateway": deployment.gateway, "monolith": deployment.url("monolith")}
                results = measure(urls, args, issued)
        except DeploymentError as error:
            raise SystemExit(str(error)) from None
    report(results, args, len(DOMAINS))


def report(results: dict[str, Any], args: argparse.Namespace, subgraphs: int) -> None:
    redis = args.redis_url or "the in-process cache"
    print(
        f"\nfeed(first: 20) with author, media, counts, viewer flags, first 2 comments; "
        f"PostgreSQL, {redis}"
    )
    print(
        f"gateway: @apollo/gateway + {subgraphs} subgraph processes; monolith: one process; "
        f"{args.connections} connections, {args.rounds} rounds of {args.seconds:.0f} s each"
    )
    columns = ("seq p50", "seq p99", "req/s", "p50 ms", "p99 ms")
    print(f"{'':10} " + " ".join(f"{c:>9}" for c in columns) + f" {'errors':>7}   req/s by round")
    for kind, r in results.items():
        print(
            f"{kind:10} {r['seq_p50_ms']:9.2f} {r['seq_p99_ms']:9.2f} {r['rps']:9.1f} "
            f"{r['p50_ms']:9.2f} {r['p99_ms']:9.2f} {r['errors']:7d}   "
            + " ".join(f"{rps:.1f}" for rps in r["rounds"])
        )
    gateway, monolith = results["gateway"], results["monolith"]
    print(
        f"ratio gateway/monolith: throughput {gateway['rps'] / monolith['rps']:.2f}, "
        f"p99 under load {gateway['p99_ms'] / monolith['p99_ms']:.2f}, "
        f"sequential p50 {gateway['seq_p50_ms'] / monolith['seq_p50_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
