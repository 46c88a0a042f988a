"""Subscription fan-out: N websocket subscribers on one post, one comment added.

    python -m bench.subscriptions [--subscribers 1000 5000] [--rounds 3]
                                  [--modes hub baseline] [--clients 2]

For each N and each mode, a fresh server process (one uvicorn worker, SQLite in a
temporary directory, embedded events, the websockets-sansio protocol without
compression, as `entativa serve` runs) and N graphql-transport-ws connections
(anonymous viewers; `--clients` worker processes share them) each subscribed to

    subscription($p: ID!) { commentAdded(postId: $p) { id body createdAt author { username } } }

on one public post. Then `--rounds` times: one `addComment` mutation over HTTP;
latency = the time each subscriber's socket received its `next` frame minus the
time the mutation was sent (wall clock, same machine), so it includes the commit,
the outbox relay, the event bus, the broker and the fan-out.

- hub: this codebase's realtime layer (subscriptions/): the event is executed and
  serialized once and the same bytes are queued on every socket;
- baseline: the same schema and resolvers served the library's default way
  (strawberry's own graphql-transport-ws handler: one async generator and one
  execution of the selection set per subscriber per event).

Memory: the server's resident set after N idle subscribers minus before them
(after a warm-up subscriber), divided by N.

The clients are a minimal websocket implementation on asyncio protocols that
stamp a frame's arrival in `data_received`, so the client side adds little to the
measured latency. Targets (issue 4): p99 < 250 ms at 5,000 on one process,
< 40 KB per idle subscriber.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key-that-is-long-enough-for-hs256-signing"
QUERY = (
    "subscription($p: ID!) { commentAdded(postId: $p) { id body createdAt author { username } } }"
)
SIGN_UP = """mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }"""
CREATE = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }"
ADD = "mutation($i: AddCommentInput!) { addComment(input: $i) { id } }"


# ── the server process ───────────────────────────────────────────────────────


def serve(port: int, mode: str) -> None:
    from datasources.migrate import upgrade
    from server.app import create_app
    from server.settings import Settings
    from subscriptions import serving

    settings = Settings()
    asyncio.run(upgrade(settings.resolved_database_url))
    app = create_app(settings)
    if mode == "baseline":  # strawberry's own websocket handlers on every path
        for route in app.routes:
            view = getattr(route, "endpoint", None)
            if hasattr(view, "realtime"):
                setattr(view, "realtime", None)  # noqa: B010
    profile = os.environ.get("BENCH_PROFILE")  # a path: cProfile the server into it
    if profile:
        import cProfile

        with cProfile.Profile() as profiler:
            serving.run(app, host="127.0.0.1", port=port, backlog=8192)
        profiler.dump_stats(profile)
        return
    serving.run(app, host="127.0.0.1", port=port, backlog=8192)


# ── a minimal websocket client ───────────────────────────────────────────────


def frame(text: str) -> bytes:
    """A masked text frame (clients must mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def control(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + masked


TALLY: dict[str, tuple[int, asyncio.Event]] = {}  # body → (subscribers, all got it)
RECEIVED: dict[str, int] = {}


def count(body: str) -> None:
    RECEIVED[body] = RECEIVED.get(body, 0) + 1
    expected = TALLY.get(body)
    if expected is not None and RECEIVED[body] >= expected[0]:
        expected[1].set()


class Subscriber(asyncio.Protocol):
    def __init__(self, host: str, port: int, post_id: str, arrivals: dict[str, float]) -> None:
        self.host, self.port, self.post_id = host, port, post_id
        self.arrivals = arrivals  # comment body → arrival time (of this socket)
        self.buffer = b""
        self.upgraded = False
        self.subscribed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /socialink/graphql HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buffer[:end]:
                self.fail(f"handshake refused: {self.buffer[:end]!r}")
                return
            self.upgraded = True
            self.buffer = self.buffer[end + 4 :]
            self.send({"type": "connection_init", "payload": {}})
        while (message := self.next_frame()) is not None:
            opcode, payload = message
            if opcode == 0x9:  # ping → pong
                assert self.transport is not None
                self.transport.write(control(0xA, payload))
            elif opcode == 0x8:
                self.fail(f"closed by the server: {payload!r}")
            elif opcode == 0x1:
                self.on_text(payload, now)

    def next_frame(self) -> tuple[int, bytes] | None:
        buffer = self.buffer
        if len(buffer) < 2:
            return None
        opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
        start = 2
        if length == 126:
            if len(buffer) < 4:
                return None
            (length,) = struct.unpack("!H", buffer[2:4])
            start = 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            (length,) = struct.unpack("!Q", buffer[2:10])
            start = 10
        if len(buffer) < start + length:
            return None
        self.buffer = buffer[start + length :]
        return opcode, buffer[start : start + length]

    def on_text(self, payload: bytes, now: float) -> None:
        if payload.startswith(b'{"id":"1","type":"next"'):  # the hot path: no JSON parse
            start = payload.index(b'"body":"') + 8
            body = payload[start : payload.index(b'"', start)].decode()
            self.arrivals[body] = now
            count(body)
            return
        message = json.loads(payload)
        kind = message.get("type")
        if kind == "connection_ack":
            variables = {"p": self.post_id}
            self.send(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": QUERY, "variables": variables},
                }
            )
            # Subscribed once the server has read it; a round trip (ping/pong) proves it.
            self.send({"type": "ping"})
        elif kind == "pong" and not self.subscribed.done():
            self.subscribed.set_result(None)
        elif kind == "ping":
            self.send({"type": "pong"})
        elif kind == "next":
            body = message["payload"]["data"]["commentAdded"]["body"]
            self.arrivals[body] = now
            count(body)
        elif kind == "error":
            self.fail(f"subscription error: {message}")

    def send(self, message: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.write(frame(json.dumps(message)))

    def fail(self, reason: str) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(RuntimeError(reason))
        else:
            print(f"client error: {reason}", file=sys.stderr, flush=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(f"connection lost: {exc!r}")


async def client_worker(port: int, post_id: str, count: int) -> None:
    """A client process: open `count` subscribers, say `ready`, then on each stdin
    line `round <body>` wait for that body on every socket and print the arrivals."""
    loop = asyncio.get_running_loop()
    subscribers: list[Subscriber] = []
    for start in range(0, count, 100):  # batches: the server's accept queue is finite
        batch = []
        for _ in range(min(100, count - start)):
            subscriber = Subscriber("127.0.0.1", port, post_id, {})
            await loop.create_connection(lambda s=subscriber: s, "127.0.0.1", port)  # type: ignore[misc]
            batch.append(subscriber)
        await asyncio.gather(*(s.subscribed for s in batch))
        subscribers += batch
    print("ready", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        _, body = line.split(" ", 1)
        everyone = asyncio.Event()
        TALLY[body] = (len(subscribers), everyone)
        if sum(body in s.arrivals for s in subscribers) == len(subscribers):
            everyone.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                await everyone.wait()
        times = [s.arrivals.get(body) for s in subscribers]
        print(json.dumps({"body": body, "arrivals": times}), flush=True)


# ── the driver ───────────────────────────────────────────────────────────────


@dataclass
class Outcome:
    mode: str
    subscribers: int
    latencies_ms: list[float]
    missing: int
    bytes_per_subscriber: float


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            try:
                if (await http.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


async def gql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str = ""
) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        "/socialink/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


async def run(mode: str, subscribers: int, rounds: int, clients: int) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="bench-subscriptions-") as tmp:
        port = free_port()
        env = {
            **os.environ,
            "ENTATIVA_DATA_DIR": tmp,
            "ENTATIVA_SECRET_KEY": SECRET,
            "ENTATIVA_LOG_LEVEL": "WARNING",
            "ENTATIVA_REDIS_URL": "",
            "ENTATIVA_KAFKA_BOOTSTRAP": "",
            "ENTATIVA_WS_PING_SECONDS": "0",
            "ENTATIVA_MAX_CONNECTIONS_PER_USER": str(subscribers + 10),
        }
        server = spawn(["--serve", str(port), "--mode", mode], env=env)
        workers: list[subprocess.Popen[str]] = []
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(base)
            async with httpx.AsyncClient(base_url=base, timeout=120) as http:
                tokens = []
                for name in ("author", "commenter"):
                    data = await gql(
                        http,
                        SIGN_UP,
                        {
                            "input": {
                                "username": name,
                                "email": f"{name}@example.com",
                                "password": "correct horse battery",
                            }
                        },
                    )
                    tokens.append(data["signUp"]["accessToken"])
                post = await gql(http, CREATE, {"i": {"caption": "live"}}, tokens[0])
                post_id = post["createPost"]["id"]
                # Warm-up: one subscriber, one comment (imports, caches, first execution).
                warm = await start_clients(port, post_id, 1, 1)
                await one_round(http, warm, post_id, tokens[1], "warm-up")
                stop(warm)
                await asyncio.sleep(0.5)
                before = rss_bytes(server.pid)
                workers = await start_clients(port, post_id, subscribers, clients)
                await asyncio.sleep(1.0)
                after = rss_bytes(server.pid)
                latencies: list[float] = []
                missing = 0
                for number in range(rounds):
                    got, lost = await one_round(
                        http, workers, post_id, tokens[1], f"round {number}"
                    )
                    latencies += got
                    missing += lost
                    await asyncio.sleep(0.5)
            return Outcome(mode, subscribers, latencies, missing, (after - before) / subscribers)
        finally:
            stop(workers)
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


async def start_clients(
    port: int, post_id: str, total: int, processes: int
) -> list[subprocess.Popen[str]]:
    shares = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
    workers = [
        spawn(["--client", str(port), post_id, str(share)], pipes=True) for share in shares if share
    ]
    for worker in workers:
        line = await asyncio.to_thread(worker.stdout.readline)  # type: ignore[union-attr]
        if line.strip() != "ready":
            raise RuntimeError(f"client worker failed: {line!r}")
    return workers


async def one_round(
    http: httpx.AsyncClient,
    workers: list[subprocess.Popen[str]],
    post_id: str,
    token: str,
    body: str,
) -> tuple[list[float], int]:
    for worker in workers:
        worker.stdin.write(f"round {body}\n")  # type: ignore[union-attr]
        worker.stdin.flush()  # type: ignore[union-attr]
    sent = time.time()
    await gql(http, ADD, {"i": {"postId": post_id, "body": body}}, token)
    latencies, missing = [], 0
    for worker in workers:
        report = json.loads(await asyncio.to_thread(worker.stdout.readline))  # type: ignore[union-attr]
        for arrived in report["arrivals"]:
            if arrived is None:
                missing += 1
            else:
                latencies.append((arrived - sent) * 1000)
    return latencies, missing


def spawn(
    arguments: list[str], env: dict[str, str] | None = None, pipes: bool = False
) -> subprocess.Popen[str]:
    """This module in another process (the server, or a client worker)."""
    pipe = subprocess.PIPE if pipes else None
    return subprocess.Popen(
        [sys.executable, "-m", "bench.subscriptions", *arguments],
        cwd=ROOT,
        env=env,
        stdin=pipe,
        stdout=pipe,
        text=True,
    )


def stop(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(outcomes: list[Outcome]) -> None:
    columns = ("mode", "subscribers", "p50 ms", "p99 ms", "max ms", "missing", "KB/idle sub")
    print()
    print("{:<9} {:>11} {:>8} {:>8} {:>8} {:>7} {:>11}".format(*columns))
    for o in outcomes:
        latencies = o.latencies_ms
        print(
            f"{o.mode:<9} {o.subscribers:>11} {percentile(latencies, 0.5):>8.1f} "
            f"{percentile(latencies, 0.99):>8.1f} {max(latencies, default=float('nan')):>8.1f} "
            f"{o.missing:>7} {o.bytes_per_subscriber / 1024:>11.1f}"
        )
    by = {(o.mode, o.subscribers): o for o in outcomes}
    for n in sorted({o.subscribers for o in outcomes}):
        hub, base = by.get(("hub", n)), by.get(("baseline", n))
        if hub and base:
            p99 = percentile(base.latencies_ms, 0.99) / percentile(hub.latencies_ms, 0.99)
            p50 = percentile(base.latencies_ms, 0.5) / percentile(hub.latencies_ms, 0.5)
            memory = base.bytes_per_subscriber / max(hub.bytes_per_subscriber, 1)
            print(
                f"N={n}: p99 baseline/hub = {p99:.1f}x, p50 baseline/hub = {p50:.1f}x, "
                f"memory per idle subscriber baseline/hub = {memory:.2f}x"
            )
    hub5k = by.get(("hub", 5000))
    if hub5k:
        p99 = percentile(hub5k.latencies_ms, 0.99)
        kb = hub5k.bytes_per_subscriber / 1024
        print(
            f"targets at 5,000: p99 {p99:.0f} ms (< 250: {'met' if p99 < 250 else 'NOT met'}), "
            f"{kb:.1f} KB per idle subscriber (< 40: {'met' if kb < 40 else 'NOT met'})"
        )


async def main_async(args: argparse.Namespace) -> None:
    outcomes = []
    for n in args.subscribers:
        for mode in args.modes:
            outcome = await run(mode, n, args.rounds, args.clients)
            print(
                f"{mode} N={n}: p50 {percentile(outcome.latencies_ms, 0.5):.1f} ms, "
                f"p99 {percentile(outcome.latencies_ms, 0.99):.1f} ms, missing {outcome.missing}, "
                f"{outcome.bytes_per_subscriber / 1024:.1f} KB per idle subscriber",
                flush=True,
            )
            outcomes.append(outcome)
    report(outcomes)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[4] if len(sys.argv) > 4 else "hub")
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        asyncio.run(client_worker(int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--modes", nargs="+", default=["hub", "baseline"], choices=["hub", "baseline"]
    )
    parser.add_argument("--clients", type=int, default=2, help="client worker processes")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
