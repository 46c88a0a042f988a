"""A small closed-loop HTTP/1.1 load generator (keep-alive, asyncio streams).

Run in its own process so the server under test gets a core of its own:
    python -m bench.loadgen URL BODY_FILE --seconds 10 --connections 8 [--header 'K: V']
Prints one JSON line: requests, errors, rps, p50_ms, p99_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from urllib.parse import urlsplit


async def _one_connection(
    host: str, port: int, request: bytes, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if b" 200 " not in status_line:
                errors.append(1)
    finally:
        writer.close()


def build_request(url: str, body: bytes | None, headers: list[str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    method = "POST" if body is not None else "GET"
    lines = [f"{method} {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}", *headers]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
    return parts.hostname or "127.0.0.1", parts.port or 80, raw


async def run(
    url: str, body: bytes | None, headers: list[str], seconds: float, connections: int
) -> dict[str, float]:
    host, port, request = build_request(url, body, headers)
    latencies: list[float] = []
    errors: list[int] = []
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _one_connection(host, port, request, deadline, latencies, errors)
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "errors": len(errors),
        "rps": len(ordered) / elapsed,
        "p50_ms": 1000 * statistics.median(ordered) if ordered else 0.0,
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("body_file", nargs="?")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    body = open(args.body_file, "rb").read() if args.body_file else None
    print(json.dumps(asyncio.run(run(args.url, body, args.header, args.seconds, args.connections))))


if __name__ == "__main__":
    main()
