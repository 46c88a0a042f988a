"""End-to-end encrypted messaging: relay throughput and group fan-out, on one process.

    python -m bench.messaging [--pairs 64] [--messages 40] [--group 1500]
                              [--clients 2] [--send-over websocket|http]
                              [--database-url URL]

One server process (one uvicorn worker, `entativa serve`'s websocket stack,
rate limits off: this measures the relay, not the buckets), real clients
(clients/messaging: X3DH, the Double Ratchet, MLS) driving it over HTTP and
graphql-transport-ws websockets.

Relay: `--pairs` sender/receiver pairs (distinct users, one device each) set up
their sessions through the API (claimed bundle, X3DH, a reply), then each
receiver subscribes to `envelopes` over a websocket and each sender sends
`--messages` sendMessage mutations, the next one as soon as the previous
returns (closed loop), over its own graphql-transport-ws websocket (a
`subscribe` of the mutation, answered by `next` and `complete`): what a
mobile client does, which keeps one authenticated socket open to receive
anyway and sends on it (Signal's clients do the same), rather than a request
per message. `--send-over http` sends them as HTTP POSTs on one keep-alive
connection per sender instead. The ciphertexts are
made before the clock starts (encryption is the client's CPU, not the
server's); afterwards every received envelope is decrypted in order by its
receiver, so a lost, duplicated or reordered message fails the bench.
messages/s = messages / (last arrival - first send); latency = a message's
arrival on the receiver's socket minus the start of its mutation (wall clock,
same machine). Senders and receivers run in `--clients` worker processes.
Besides the server's CPU per message, the run reports the clients' and the rest
of the machine's (a local database), and what all the machine's cores allow
end to end: on a small machine the bench's own clients share the server's cores.

Baseline (same run, same database): the same envelopes (recipient, sequence,
type, content) INSERTed into `messaging_envelopes`, one transaction each, by
as many concurrent writers as there are pairs: the durable write every relayed
message needs, without GraphQL, addressing checks, the queue counter,
conversations or delivery.

Fan-out: a `--group`-member MLS group (1 creator + members, one device each,
added through key packages, commits and a Welcome), every member's device
subscribed after what is already queued for it (as a member that has joined);
one sendGroupMessage; the time until the last device's socket has
the envelope. Baseline: one transaction inserting the same envelopes.

Target (issue 8): at least 2,000 messages/s end to end on one process. Default
store SQLite in a temporary directory; `--database-url` points at PostgreSQL
(its database is dropped and created again: give it a name of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import connect

from clients.messaging import Api, Device
from clients.messaging.client import ENVELOPES, SEND

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key-that-is-long-enough-for-hs256-signing"
PLATFORM = "socialink"
T = TypeVar("T")


# ── the server process ───────────────────────────────────────────────────────


def serve(port: int) -> None:
    from datasources.migrate import upgrade
    from server.app import create_app
    from server.settings import Settings
    from subscriptions import serving

    settings = Settings()
    asyncio.run(upgrade(settings.resolved_database_url))
    app = create_app(settings)
    profile = os.environ.get("BENCH_PROFILE")  # a path: cProfile the server into it
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        # The driver starts it as the measured phase starts (SIGUSR2: setup is not
        # profiled) and asks for the dump before its SIGTERM (SIGUSR1: uvicorn
        # re-raises SIGTERM after its shutdown).
        signal.signal(signal.SIGUSR2, lambda *_: profiler.enable())
        signal.signal(signal.SIGUSR1, lambda *_: profiler.dump_stats(profile))
    serving.run(app, host="127.0.0.1", port=port, backlog=8192)


def server_env(data_dir: str, database_url: str, connections: int) -> dict[str, str]:
    return {
        **os.environ,
        "ENTATIVA_DATA_DIR": data_dir,
        "ENTATIVA_DATABASE_URL": database_url,
        "ENTATIVA_SECRET_KEY": SECRET,
        "ENTATIVA_LOG_LEVEL": "WARNING",
        "ENTATIVA_REDIS_URL": "",
        "ENTATIVA_KAFKA_BOOTSTRAP": "",
        "ENTATIVA_WS_PING_SECONDS": "0",
        "ENTATIVA_RATE_LIMITS": json.dumps({"enabled": False}),
        "ENTATIVA_MAX_CONNECTIONS_PER_USER": str(connections),
    }


# ── client worker processes ──────────────────────────────────────────────────


async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, token: str, body: bytes
) -> bytes:
    """One HTTP/1.1 keep-alive POST of a GraphQL body; the response body."""
    writer.write(
        (
            f"POST /{PLATFORM}/graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
    )
    await writer.drain()
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    response = await reader.readexactly(length)
    if b" 200 " not in status or b'"errors"' in response:
        raise RuntimeError(f"send failed: {status!r} {response[:300]!r}")
    return response


async def _connect(port: int, token: str) -> Any:
    """A graphql-transport-ws socket, acknowledged."""
    ws = await connect(
        f"ws://127.0.0.1:{port}/{PLATFORM}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        compression=None,
        max_size=None,
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    ack = json.loads(await ws.recv())
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"not acknowledged: {ack}")
    return ws


async def _mutate(ws: Any, op_id: str, body: str) -> None:
    """One mutation over the socket (a `subscribe` the server answers with `next`
    and `complete`); raises when it fails."""
    await ws.send(f'{{"id":"{op_id}","type":"subscribe","payload":{body}}}')
    while True:
        message = json.loads(await ws.recv())
        kind = message.get("type")
        if kind == "complete" and message.get("id") == op_id:
            return
        if kind == "error" or (kind == "next" and "errors" in message["payload"]):
            raise RuntimeError(f"send failed: {message}")


async def _subscribe(port: int, token: str, device_id: int, after: int | None) -> Any:
    ws = await _connect(port, token)
    variables = {"deviceId": device_id, "afterSequence": after}
    await ws.send(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": ENVELOPES, "variables": variables},
            }
        )
    )
    return ws


def read_json(path: str) -> Any:
    return json.loads(Path(path).read_text())


def write_json(path: str, value: Any) -> None:
    Path(path).write_text(json.dumps(value))


async def _wait_for_go() -> None:
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)


async def relay_worker(port: int, job_path: str, out_path: str) -> None:
    """Receivers subscribe; on `go`, senders send their prepared bodies, closed loop."""
    job = read_json(job_path)
    pairs, over = job["pairs"], job["over"]
    sockets = [
        await _subscribe(port, p["receiver_token"], p["receiver_device"], p["after"]) for p in pairs
    ]
    await _wait_for_go()
    cpu_at_go = time.process_time()
    sent_at: list[list[float]] = [[] for _ in pairs]
    arrivals: list[list[tuple[float, str]]] = [[] for _ in pairs]

    async def send(index: int) -> None:
        pair = pairs[index]
        if over == "http":
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                for body in pair["bodies"]:
                    sent_at[index].append(time.time())
                    await _post(reader, writer, port, pair["sender_token"], body.encode())
            finally:
                writer.close()
            return
        ws = await _connect(port, pair["sender_token"])
        try:
            for number, body in enumerate(pair["bodies"]):
                sent_at[index].append(time.time())
                await _mutate(ws, str(number), body)
        finally:
            await ws.close()

    async def receive(index: int) -> None:
        ws, wanted = sockets[index], len(pairs[index]["bodies"])
        while len(arrivals[index]) < wanted:
            raw = await ws.recv()
            now = time.time()
            message = json.loads(raw)
            if message.get("type") == "next":
                arrivals[index].append((now, json.dumps(message["payload"]["data"]["envelopes"])))
            elif message.get("type") not in ("ping", "pong"):
                raise RuntimeError(f"unexpected {message}")

    receiving = [asyncio.create_task(receive(i)) for i in range(len(pairs))]
    await asyncio.gather(*(send(i) for i in range(len(pairs))))
    async with asyncio.timeout(120):
        await asyncio.gather(*receiving)
    for ws in sockets:
        await ws.close()
    cpu = time.process_time() - cpu_at_go
    write_json(out_path, {"sent_at": sent_at, "arrivals": arrivals, "cpu_seconds": cpu})
    print("done", flush=True)


async def group_worker(port: int, job_path: str, out_path: str) -> None:
    """Members subscribe (live); on `go`, the arrival time of the first group message."""
    members = read_json(job_path)
    sockets = []
    for start in range(0, len(members), 50):  # batches: the accept queue is finite
        sockets += await asyncio.gather(
            *(
                _subscribe(port, m["token"], m["device"], m["after"])
                for m in members[start : start + 50]
            )
        )
    await _wait_for_go()
    arrivals: list[float | None] = [None] * len(sockets)

    async def receive(index: int) -> None:
        while True:
            message = json.loads(await sockets[index].recv())
            if message.get("type") == "next":
                envelope = message["payload"]["data"]["envelopes"]
                if envelope["type"] == "MLS_APPLICATION":
                    arrivals[index] = time.time()
                    return

    try:
        async with asyncio.timeout(120):
            await asyncio.gather(*(receive(i) for i in range(len(sockets))))
    except TimeoutError:
        pass
    for ws in sockets:
        await ws.close()
    write_json(out_path, arrivals)
    print("done", flush=True)


def spawn(arguments: list[str], env: dict[str, str] | None = None, pipes: bool = False) -> Any:
    pipe = subprocess.PIPE if pipes else None
    return subprocess.Popen(
        [sys.executable, "-m", "bench.messaging", *arguments],
        cwd=ROOT,
        env=env,
        stdin=pipe,
        stdout=pipe,
        text=True,
    )


async def start_workers(kind: str, port: int, jobs: list[Any], tmp: str) -> list[tuple[Any, str]]:
    """One process per job; returns (process, output path) once every one is ready."""
    workers = []
    for number, job in enumerate(jobs):
        job_path = f"{tmp}/{kind}-{number}.json"
        write_json(job_path, job)
        out = f"{tmp}/{kind}-{number}-out.json"
        workers.append((spawn([f"--{kind}", str(port), job_path, out], pipes=True), out))
    for process, _ in workers:
        line = await asyncio.to_thread(process.stdout.readline)
        if line.strip() != "ready":
            raise RuntimeError(f"{kind} worker failed: {line!r}")
    return workers


async def go_and_collect(workers: list[tuple[Any, str]]) -> list[Any]:
    for process, _ in workers:
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for process, out in workers:
        line = await asyncio.to_thread(process.stdout.readline)
        if line.strip() != "done":
            raise RuntimeError(f"worker failed: {line!r}")
        process.wait()
        results.append(read_json(out))
    return results


def shares(items: Sequence[T], count: int) -> list[list[T]]:
    return [list(items[i::count]) for i in range(count) if items[i::count]]


# ── setup through the API (and users straight into the store) ───────────────


@dataclass
class User:
    id: str
    token: str


async def create_users(settings: Any, count: int, prefix: str) -> list[User]:
    """Users and sessions straight through the stores (no argon2 per user)."""
    from resolvers.ids import encode_id
    from server.app import create_app

    app = create_app(settings)
    runtime = app.state.runtime
    users = []
    try:
        for number in range(count):
            name = f"{prefix}{number}"
            row = await runtime.stores.users.create(
                PLATFORM, name, f"{name}@example.com", "bench-user-without-password", name
            )
            session = await runtime.auth.start_session(row.id, PLATFORM)
            users.append(User(encode_id("User", row.id), session.access_token))
    finally:
        await runtime.close()
    return users


async def bounded(tasks: Sequence[Callable[[], Awaitable[T]]], limit: int = 16) -> list[T]:
    gate = asyncio.Semaphore(limit)

    async def one(task: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await task()

    return await asyncio.gather(*(one(task) for task in tasks))


async def device_of(http: httpx.AsyncClient, user: User, one_time: int = 5) -> Device:
    device = Device.create(user.id, one_time=one_time, api=Api(http, user.token, PLATFORM))
    await device.register()
    return device


async def read_all(device: Device) -> list[Any]:
    envelopes = await device.pending()
    opened = [await device.open(envelope) for envelope in envelopes]
    await device.acknowledge(envelopes)
    return opened


# ── relay ────────────────────────────────────────────────────────────────────


@dataclass
class Pair:
    sender: Device
    receiver: Device
    after: int
    bodies: list[bytes]
    envelopes: list[dict[str, Any]]  # what each body addresses to the receiver


async def prepare_pairs(
    http: httpx.AsyncClient, users: list[User], pairs: int, messages: int
) -> list[Pair]:
    prepared = []
    for number in range(pairs):
        sender_user, receiver_user = users[2 * number], users[2 * number + 1]
        sender = await device_of(http, sender_user)
        receiver = await device_of(http, receiver_user)
        await sender.send([receiver.user_id], b"hello")  # X3DH from the claimed bundle
        (hello,) = await read_all(receiver)
        await receiver.send([sender.user_id], b"hi")  # the answer: no X3DH header after it
        await read_all(sender)
        bodies, envelopes = [], []
        for index in range(messages):
            plaintext = f"pair {number} message {index}".encode()
            addressed = await sender.encrypt_for([receiver.address], plaintext)
            request = {
                "clientMessageId": uuid.uuid4().hex,
                "senderDeviceId": sender.device_id,
                "conversationId": None,
                "envelopes": addressed,
                "expiresInSeconds": None,
            }
            bodies.append(json.dumps({"query": SEND, "variables": {"input": request}}).encode())
            envelopes.append(addressed[0])
        prepared.append(Pair(sender, receiver, hello.sequence, bodies, envelopes))
    return prepared


@dataclass
class RelayOutcome:
    messages: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_seconds: float  # user + system time the server process spent meanwhile
    client_cpu_seconds: float  # the same, of the client worker processes
    machine: MachineTime  # every core of the machine meanwhile


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class MachineTime:
    """Seconds of all the machine's cores (Linux /proc/stat): busy, and stolen by the
    host (a virtual machine's cores running someone else's work)."""

    busy: float
    steal: float
    total: float

    @classmethod
    def now(cls) -> MachineTime:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        user, nice, system, idle, iowait, irq, softirq, steal = (ticks + [0] * 8)[:8]
        hz = os.sysconf("SC_CLK_TCK")
        busy = user + nice + system + irq + softirq
        return cls(busy / hz, steal / hz, (busy + idle + iowait + steal) / hz)

    def since(self, before: MachineTime) -> MachineTime:
        return MachineTime(
            self.busy - before.busy, self.steal - before.steal, self.total - before.total
        )


async def run_relay(
    port: int, server_pid: int, prepared: list[Pair], clients: int, tmp: str, over: str
) -> RelayOutcome:
    jobs_by_pair = [
        {
            "sender_token": p.sender.token,
            "receiver_token": p.receiver.token,
            "receiver_device": p.receiver.device_id,
            "after": p.after,
            "bodies": [b.decode() for b in p.bodies],
        }
        for p in prepared
    ]
    order = list(range(len(prepared)))
    split = shares(order, clients)
    jobs = [{"over": over, "pairs": [jobs_by_pair[i] for i in s]} for s in split]
    workers = await start_workers("relay-worker", port, jobs, tmp)
    if os.environ.get("BENCH_PROFILE"):
        os.kill(server_pid, signal.SIGUSR2)
    cpu_before, machine_before = cpu_seconds(server_pid), MachineTime.now()
    results = await go_and_collect(workers)
    server_cpu = cpu_seconds(server_pid) - cpu_before
    machine = MachineTime.now().since(machine_before)
    client_cpu = sum(result["cpu_seconds"] for result in results)
    first_send, last_arrival = float("inf"), 0.0
    latencies: list[float] = []
    total = 0
    for indexes, result in zip(split, results, strict=True):
        for position, pair_index in enumerate(indexes):
            pair = prepared[pair_index]
            sent_at, arrivals = result["sent_at"][position], result["arrivals"][position]
            await verify_arrivals(pair, pair_index, arrivals)
            first_send = min(first_send, sent_at[0])
            last_arrival = max(last_arrival, arrivals[-1][0])
            latencies += [(a[0] - s) * 1000 for s, a in zip(sent_at, arrivals, strict=True)]
            total += len(arrivals)
    seconds = last_arrival - first_send
    return RelayOutcome(total, seconds, latencies, server_cpu, client_cpu, machine)


async def verify_arrivals(pair: Pair, number: int, arrivals: list[tuple[float, str]]) -> None:
    """Every message exactly once, in order, decrypting to what was sent."""
    sequences = []
    for index, (_, raw) in enumerate(arrivals):
        message = await pair.receiver.open(json.loads(raw))
        expected = f"pair {number} message {index}".encode()
        if message.plaintext != expected:
            raise AssertionError(f"pair {number}: got {message.plaintext!r}, wanted {expected!r}")
        sequences.append(message.sequence)
    if sequences != list(range(pair.after + 1, pair.after + 1 + len(arrivals))):
        raise AssertionError(f"pair {number}: sequences {sequences[:5]}… not dense")


async def relay_baseline(url: str, prepared: list[Pair]) -> float:
    """The same envelopes INSERTed one transaction each by len(prepared) writers; seconds."""
    from datasources.messaging.tables import EnvelopeRow
    from datasources.sql import Database
    from resolvers.ids import decode_id

    # The server's engine (datasources/sql.py: its pool, and on SQLite its WAL and busy
    # wait, without which 64 writers of one file fail with "database is locked").
    database = Database(url)
    engine = database.engine
    now = datetime.now(UTC)

    def row(pair: Pair, envelope: dict[str, Any], sequence: int) -> dict[str, Any]:
        return {
            "platform": PLATFORM,
            "recipient_id": decode_id(pair.receiver.user_id, "User"),
            "recipient_device_id": pair.receiver.device_id,
            "sequence": 10_000_000 + sequence,
            "type": envelope["type"],
            "sender_id": decode_id(pair.sender.user_id, "User"),
            "sender_device_id": pair.sender.device_id,
            "content": base64.b64decode(envelope["content"]),
            "server_timestamp": now,
        }

    async def writer(pair: Pair) -> None:
        for sequence, envelope in enumerate(pair.envelopes):
            async with engine.begin() as conn:
                await conn.execute(insert(EnvelopeRow), [row(pair, envelope, sequence)])

    started = time.perf_counter()
    await asyncio.gather(*(writer(pair) for pair in prepared))
    seconds = time.perf_counter() - started
    await database.dispose()
    return seconds


# ── group fan-out ────────────────────────────────────────────────────────────

LAST_QUEUED = """query LastQueued($deviceId: Int!) {
  pendingEnvelopes(deviceId: $deviceId, first: 100) { edges { node { sequence } } }
}"""


@dataclass
class FanOutOutcome:
    members: int
    mutation_ms: float
    last_ms: float
    median_ms: float
    missing: int
    baseline_ms: float
    server_cpu_ms: float


async def run_fan_out(
    http: httpx.AsyncClient,
    port: int,
    server_pid: int,
    users: list[User],
    clients: int,
    tmp: str,
    url: str,
) -> FanOutOutcome:
    creator = await device_of(http, users[0])
    members = await bounded([partial(device_of, http, u, 1) for u in users[1:]])
    await bounded([partial(m.publish_key_packages, 1) for m in members])
    group = await creator.create_group("bench")
    ids = [m.user_id for m in members]
    for start in range(0, len(ids), 500):  # commits stay under the 1 MiB handshake limit
        await creator.add_members(group, ids[start : start + 500])
    queued = await bounded([partial(last_queued, m) for m in members])
    jobs = [
        {"token": m.token, "device": m.device_id, "after": after}
        for m, after in zip(members, queued, strict=True)
    ]
    workers = await start_workers("group-worker", port, shares(jobs, clients), tmp)
    for process, _ in workers:
        process.stdin.write("go\n")
        process.stdin.flush()
    await asyncio.sleep(0.5)  # every worker is reading its sockets
    cpu_before = cpu_seconds(server_pid)
    started = time.time()
    result = await creator.send_group(group, b"to all 1,500 of us")
    mutation_ms = (time.time() - started) * 1000
    assert result["deliveredDeviceCount"] == len(members), result
    arrivals: list[float | None] = []
    for process, out in workers:
        line = await asyncio.to_thread(process.stdout.readline)
        if line.strip() != "done":
            raise RuntimeError(f"group worker failed: {line!r}")
        process.wait()
        arrivals += read_json(out)
    server_cpu_ms = (cpu_seconds(server_pid) - cpu_before) * 1000
    got = [(a - started) * 1000 for a in arrivals if a is not None]
    envelopes = len(members)
    baseline_ms = await fan_out_baseline(url, creator, members, envelopes)
    return FanOutOutcome(
        len(members) + 1,
        mutation_ms,
        max(got, default=float("nan")),
        statistics.median(got) if got else float("nan"),
        arrivals.count(None),
        baseline_ms,
        server_cpu_ms,
    )


async def last_queued(member: Device) -> int | None:
    """The sequence of the last envelope queued for the member (its Welcome, the
    commits of later adds): it subscribes after it, as a member that has joined and
    read its queue does. Subscribing from the start instead would replay those
    (up to a MiB each) to every member as the group message is sent, and the
    fan-out would time that backlog."""
    assert member.api is not None
    data = await member.api(LAST_QUEUED, {"deviceId": member.device_id})
    edges = data["pendingEnvelopes"]["edges"]
    return edges[-1]["node"]["sequence"] if edges else None


async def fan_out_baseline(url: str, creator: Device, members: list[Device], count: int) -> float:
    """The same number of envelopes of the same size in one transaction; ms."""
    from datasources.messaging.tables import EnvelopeRow
    from datasources.sql import Database
    from resolvers.ids import decode_id

    content = creator.groups[next(iter(creator.groups))].encrypt(b"to all 1,500 of us")
    now = datetime.now(UTC)
    sender = decode_id(creator.user_id, "User")
    rows = [
        {
            "platform": PLATFORM,
            "recipient_id": decode_id(m.user_id, "User"),
            "recipient_device_id": m.device_id,
            "sequence": 10_000_000,
            "type": "MLS_APPLICATION",
            "sender_id": sender,
            "sender_device_id": creator.device_id,
            "content": content,
            "server_timestamp": now,
        }
        for m in members[:count]
    ]
    database = Database(url)
    started = time.perf_counter()
    async with database.engine.begin() as conn:
        await conn.execute(insert(EnvelopeRow), rows)
    elapsed = (time.perf_counter() - started) * 1000
    await database.dispose()
    return elapsed


# ── the driver ───────────────────────────────────────────────────────────────


async def fresh_database(url: str) -> None:
    """PostgreSQL: drop and create the database of `url` (as bench.notifications)."""
    name = make_url(url).database
    admin = create_async_engine(url.replace(f"/{name}", "/postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


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


async def main(args: argparse.Namespace) -> None:
    from server.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bench-messaging-") as tmp:
        if args.database_url:
            await fresh_database(args.database_url)
        settings = Settings(data_dir=Path(tmp), database_url=args.database_url, secret_key=SECRET)
        url = settings.resolved_database_url
        backend = make_url(url).get_backend_name()
        port = free_port()
        server = spawn(["--serve", str(port)], env=server_env(tmp, args.database_url, 100))
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(base)
            limits = httpx.Limits(max_connections=32)
            async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as http:
                if args.pairs:
                    users = await create_users(settings, 2 * args.pairs, "pair")
                    print(
                        f"relay: {args.pairs} pairs x {args.messages} messages, {backend}, "
                        f"sent over {args.send_over}"
                    )
                    prepared = await prepare_pairs(http, users, args.pairs, args.messages)
                    relay = await run_relay(
                        port, server.pid, prepared, args.clients, tmp, args.send_over
                    )
                    report_relay(relay)
                    report_baseline(relay, await relay_baseline(url, prepared))
                if args.group:
                    users = await create_users(settings, args.group, "member")
                    print(f"fan-out: one MLS application message to {args.group} members")
                    outcome = await run_fan_out(
                        http, port, server.pid, users, args.clients, tmp, url
                    )
                    report_fan_out(outcome)
        finally:
            if os.environ.get("BENCH_PROFILE"):
                server.send_signal(signal.SIGUSR1)
                await asyncio.sleep(3)
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def report_relay(relay: RelayOutcome) -> None:
    rate = relay.messages / relay.seconds
    lat = relay.latencies_ms
    print(
        f"  end to end:  {relay.messages:,} messages in {relay.seconds:.2f} s = {rate:,.0f} msg/s; "
        f"latency p50 {percentile(lat, 0.5):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms, "
        f"max {max(lat):.1f} ms (all decrypted, in order, once)"
    )
    per_message = relay.server_cpu_seconds / relay.messages * 1000
    print(
        f"  server CPU: {per_message:.2f} ms per message, i.e. at most "
        f"{1000 / per_message:,.0f} msg/s on one fully available core"
    )
    report_machine(relay)


def report_machine(relay: RelayOutcome) -> None:
    """Who else used the machine's cores: on a small machine the bench's own clients
    and a local database share them with the server, which caps end to end."""
    machine, cores = relay.machine, os.cpu_count() or 1
    clients = relay.client_cpu_seconds / relay.messages * 1000
    others = machine.busy - relay.server_cpu_seconds - relay.client_cpu_seconds
    everyone = machine.busy / relay.messages * 1000
    print(
        f"  clients CPU: {clients:.2f} ms per message; everything else on the machine (a local "
        f"database, …): {max(others, 0.0) / relay.messages * 1000:.2f} ms; the machine's "
        f"{cores} cores, {machine.busy / machine.total:.0%} busy "
        f"({machine.steal / machine.total:.0%} stolen by the host), allow at most "
        f"{cores * 1000 / everyone:,.0f} msg/s at {everyone:.2f} ms per message"
    )


def report_baseline(relay: RelayOutcome, base_seconds: float) -> None:
    rate = relay.messages / relay.seconds
    base_rate = relay.messages / base_seconds
    print(
        f"  baseline (INSERT of the same envelopes, one transaction each): "
        f"{base_rate:,.0f} envelopes/s"
    )
    print(f"  ratio end to end / baseline: {rate / base_rate:.2f} (target: >= 2,000 msg/s)")


def report_fan_out(o: FanOutOutcome) -> None:
    print(
        f"  sendGroupMessage returned after {o.mutation_ms:.0f} ms; the last of "
        f"{o.members - 1:,} devices had it after {o.last_ms:.0f} ms "
        f"(median {o.median_ms:.0f} ms, missing {o.missing}); server CPU meanwhile "
        f"{o.server_cpu_ms:.0f} ms"
    )
    print(
        f"  baseline (one INSERT transaction of the same {o.members - 1:,} envelopes): "
        f"{o.baseline_ms:.0f} ms; ratio last device / baseline: {o.last_ms / o.baseline_ms:.1f}"
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--messages", type=int, default=40, help="per pair")
    parser.add_argument("--group", type=int, default=1500, help="members (0: skip)")
    parser.add_argument("--clients", type=int, default=2, help="client worker processes")
    parser.add_argument(
        "--send-over",
        choices=("websocket", "http"),
        default="websocket",
        help="how senders send sendMessage (default: their graphql-transport-ws socket)",
    )
    parser.add_argument("--database-url", default="")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--relay-worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--group-worker", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    if arguments.serve:
        serve(arguments.serve)
    elif arguments.relay_worker:
        port_, job_, out_ = arguments.relay_worker
        asyncio.run(relay_worker(int(port_), job_, out_))
    elif arguments.group_worker:
        port_, job_, out_ = arguments.group_worker
        asyncio.run(group_worker(int(port_), job_, out_))
    else:
        asyncio.run(main(arguments))
