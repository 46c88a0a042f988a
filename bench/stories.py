"""markStorySeen and poll votes per second with 64 concurrent clients, against the raw store writes.

    python -m bench.stories [--seconds 10] [--clients 64] [--store relational|mongo]
                            [--database-url URL] [--mongo-url URL] [--spread]

Stories in the embedded default (the relational store on SQLite in a temporary
directory), on PostgreSQL (`--database-url`: a database of its own, dropped and
created) or in MongoDB (`--mongo-url`, or `--store mongo` for the server at
127.0.0.1:27017: a fresh database, dropped afterwards). Seeds authors, each with
up to 100 active stories carrying one poll sticker (as createStory stores it),
and `--clients` signed-in viewers who follow every author. Then, each for
`--seconds`, in this one process (app and store share the event loop and the core):

- graph: the real ASGI app (its lifespan running: the outbox relay and the
  sweeper, as in the embedded default) driven through httpx's ASGI transport by
  `--clients` tasks, each one viewer: `markStorySeen(storyId)` returning
  `{ id viewerHasSeen }`, then `respondToSticker` with a `pollOption`, returning
  the poll's options with their vote counts and the viewer's vote.
- baseline: the same writes straight on the StoryStore with as many tasks:
  `add_viewer` + `bump(impressions)` (what markStorySeen writes) and
  `add_response` + `bump(sticker_taps)` (what a vote writes).

All clients walk the stories in the same order, so at any moment they view and
vote on the same story (the contended case: one hot story); `--spread` starts
each client at its own place in the list instead (no two on one story at once).
Each viewer votes once per story; the stories are enough for every viewer's first
view and vote (sized from a 1 s calibration run of the store), and views beyond
them are counted as repeats. Afterwards
the store is read back: unique viewers, impressions, poll tallies and sticker
taps must equal what the clients were told succeeded ("exact": no write lost).
Prints ops/s, p50/p99 latency and the ratio graph/baseline for each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLATFORM = "vignette"
SECRET = "bench-secret-key-that-is-long-enough-for-hs256"
DEFAULT_MONGO = "mongodb://127.0.0.1:27017"
OPTIONS = ["yes", "no", "maybe"]
PER_AUTHOR = 100  # MAX_ACTIVE_STORIES: what one author may have at once
CALIBRATION_SECONDS = 1.0

CREATE = "mutation($input: CreateStoryInput!) { createStory(input: $input) { id } }"
SEEN = "mutation($id: ID!) { markStorySeen(storyId: $id) { id viewerHasSeen } }"
VOTE = (
    "mutation($input: RespondToStickerInput!) { respondToSticker(input: $input) { id "
    "... on PollSticker { viewerVote options { text voteCount } } } }"
)


@dataclass
class Viewer:
    user_id: int
    token: str


@dataclass
class Run:
    """One closed-loop run: calls, failures, latencies; and what succeeded, per story."""

    calls: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    votes: Counter[tuple[int, int]] = field(default_factory=Counter)  # (story, option) → ok
    firsts: int = 0  # successful calls on a story the client had not called for before
    exhausted: int = 0  # clients that ran out of stories to vote on
    first_error: str = ""

    @property
    def rate(self) -> float:
        return (self.calls - self.errors) / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        if q == 0.5:
            return 1000 * statistics.median(ordered)
        return 1000 * ordered[int(q * (len(ordered) - 1))]


# ── setup ────────────────────────────────────────────────────────────────


def make_settings(args: argparse.Namespace, data_dir: Path) -> Any:
    from server.settings import Settings

    mongo = args.store == "mongo"
    return Settings(
        data_dir=data_dir,
        database_url=args.database_url,
        mongo_url=(args.mongo_url or DEFAULT_MONGO) if mongo else "",
        mongo_database=f"entativa_bench_stories_{uuid.uuid4().hex[:8]}",
        secret_key=SECRET,
        log_level="WARNING",
    )


async def fresh_database(url: str) -> None:
    """An empty PostgreSQL database of the bench's own (SQLite: a new file anyway)."""
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = make_url(url).database
    admin = create_async_engine(url.replace(f"/{name}", "/postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()


async def drop_mongo(settings: Any) -> None:
    if not settings.mongo_url:
        return
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    await client.drop_database(settings.mongo_database)
    await client.close()


class Seeder:
    """Users, follows and stories straight through the stores (tests/conftest.py
    create_users' path: no argon2); the poll sticker as createStory stores it."""

    def __init__(self, app: Any, http: Any) -> None:
        self.app = app
        self.http = http
        self.stores = app.state.runtime.stores
        self.auth = app.state.runtime.auth
        self.names = 0
        self.viewers: list[Viewer] = []
        self.authors: list[tuple[int, int, int]] = []  # (user id, media id, stories left)
        self.sticker: dict[str, Any] = {}

    async def user(self, prefix: str) -> Viewer:
        self.names += 1
        name = f"{prefix}{self.names}"
        user = await self.stores.users.create(
            PLATFORM, name, f"{name}@example.com", "bench-user-without-password", name
        )
        session = await self.auth.start_session(user.id, PLATFORM)
        return Viewer(user.id, session.access_token)

    async def media(self, owner_id: int) -> int:
        from datasources.media.tables import MediaRow

        async with self.stores.db.transaction() as session:
            row = MediaRow(
                platform=PLATFORM, owner_id=owner_id, kind="IMAGE", mime_type="image/png",
                size_bytes=100, sha256="0" * 64, width=10, height=10, blob_key=f"bench/{owner_id}",
            )  # fmt: skip
            session.add(row)
            await session.flush()
            return int(row.id)

    async def start(self, viewers: int) -> None:
        """The viewers; and one story made through createStory, whose stored poll
        sticker every seeded story copies."""
        from resolvers.ids import encode_id, split_id

        self.viewers = [await self.user("viewer") for _ in range(viewers)]
        author = await self.user("author")
        media = await self.media(author.user_id)
        sticker = {"poll": {"question": "Which?", "options": OPTIONS}}
        body = {
            "query": CREATE,
            "variables": {
                "input": {
                    "mediaId": encode_id("Media", media),
                    "stickers": [{"sticker": sticker, "placement": {"x": 0.5, "y": 0.5}}],
                }
            },
        }
        response = await post(self.http, author.token, body)
        if "errors" in response:
            raise SystemExit(f"createStory failed: {response['errors']}")
        parts = split_id(response["data"]["createStory"]["id"])
        assert parts is not None
        story = await self.stores.stories.story(int(parts[1]), None)
        assert story is not None and story.stickers[0]["type"] == "POLL"
        self.sticker = dict(story.stickers[0])
        await self.follow(author.user_id)
        self.authors.append((author.user_id, media, PER_AUTHOR - 1))

    async def follow(self, author_id: int) -> None:
        for viewer in self.viewers:
            await self.stores.users.graph.follow(viewer.user_id, author_id)

    async def stories(self, count: int) -> list[int]:
        """`count` new active stories, each with the poll sticker, of followed authors."""
        from datasources.stories.records import NewStory

        slots: list[tuple[int, int]] = []
        while len(slots) < count:
            if not self.authors or self.authors[-1][2] == 0:
                author = await self.user("author")
                await self.follow(author.user_id)
                self.authors.append((author.user_id, await self.media(author.user_id), PER_AUTHOR))
            author_id, media, left = self.authors[-1]
            take = min(left, count - len(slots))
            slots += [(author_id, media)] * take
            self.authors[-1] = (author_id, media, left - take)
        created: list[int] = [0] * count
        queue = iter(enumerate(slots))

        async def worker() -> None:
            for i, (author_id, media) in queue:
                story = await self.stores.stories.add_story(
                    NewStory(author_id=author_id, platform=PLATFORM, media_id=media,
                             audience="EVERYONE", created_at=self.stores.clock(),
                             stickers=(self.sticker,))
                )  # fmt: skip
                created[i] = story.id

        await asyncio.gather(*(worker() for _ in range(16)))
        return created


async def post(http: Any, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(
        f"/{PLATFORM}/graphql",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    result: dict[str, Any] = response.json()
    if response.status_code != 200 and "errors" not in result:
        result["errors"] = [{"message": f"HTTP {response.status_code}"}]
    return result


# ── the closed loops ─────────────────────────────────────────────────────

# One call of one client: (client index, viewer, story id, position in the stories)
# → (ok, error text, the poll option voted for if a vote).
Outcome = tuple[bool, str, int | None]
Step = Callable[[int, Viewer, int, int], Awaitable[Outcome]]


async def drive(
    step: Step,
    viewers: list[Viewer],
    stories: list[int],
    seconds: float,
    wrap: bool,
    spread: bool = False,
) -> Run:
    """Every client takes the stories in the same order (`spread`: each from its own
    starting point) until time is up; after the last one it starts again (`wrap`:
    repeat views) or stops (a viewer votes once)."""
    run = Run()
    deadline = time.perf_counter() + seconds
    count = len(stories)

    async def client(index: int, viewer: Viewer) -> None:
        offset = index * count // len(viewers) if spread else 0
        calls = 0
        while time.perf_counter() < deadline:
            if calls == count and not wrap:
                run.exhausted += 1
                return
            lap, position = calls // count, (offset + calls) % count
            story = stories[position]
            started = time.perf_counter()
            ok, error, option = await step(index, viewer, story, position)
            run.latencies.append(time.perf_counter() - started)
            run.calls += 1
            if not ok:
                run.errors += 1
                run.first_error = run.first_error or error
            else:
                run.firsts += lap == 0
                if option is not None:
                    run.votes[(story, option)] += 1
            calls += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i, v) for i, v in enumerate(viewers)))
    run.elapsed = time.perf_counter() - started
    return run


def option_of(index: int, position: int) -> int:
    return (index + position) % len(OPTIONS)


def graph_steps(http: Any) -> tuple[Step, Step]:
    from resolvers.ids import encode_id

    async def seen(index: int, viewer: Viewer, story: int, position: int) -> Outcome:
        body = {"query": SEEN, "variables": {"id": encode_id("Story", story)}}
        result = await post(http, viewer.token, body)
        if "errors" in result:
            return False, str(result["errors"])[:300], None
        return result["data"]["markStorySeen"]["viewerHasSeen"] is True, "not seen", None

    async def vote(index: int, viewer: Viewer, story: int, position: int) -> Outcome:
        option = option_of(index, position)
        variables = {
            "input": {
                "storyId": encode_id("Story", story),
                "stickerId": encode_id("Sticker", f"{story}.0"),
                "response": {"pollOption": option},
            }
        }
        result = await post(http, viewer.token, {"query": VOTE, "variables": variables})
        if "errors" in result:
            return False, str(result["errors"])[:300], None
        if result["data"]["respondToSticker"]["viewerVote"] != option:
            return False, "viewerVote is not the option voted for", None
        return True, "", option

    return seen, vote


def store_steps(stores: Any) -> tuple[Step, Step]:
    from datasources.stories.records import IMPRESSIONS, STICKER_TAPS, ResponseRecord

    store = stores.stories

    async def seen(index: int, viewer: Viewer, story: int, position: int) -> Outcome:
        await store.add_viewer(story, viewer.user_id, stores.clock(), None)
        await store.bump(story, IMPRESSIONS)
        return True, "", None

    async def vote(index: int, viewer: Viewer, story: int, position: int) -> Outcome:
        option = option_of(index, position)
        response = ResponseRecord(story, 0, viewer.user_id, "POLL", stores.clock(), option=option)
        if not await store.add_response(response):
            return False, "add_response refused a first vote", None
        await store.bump(story, STICKER_TAPS)
        return True, "", option

    return seen, vote


# ── checks ───────────────────────────────────────────────────────────────


async def check_views(stores: Any, stories: list[int], run: Run) -> dict[str, Any]:
    """Unique viewers = the clients' first views; impressions = every successful call."""
    from datasources.stories.records import IMPRESSIONS

    viewers = sum((await stores.stories.viewer_counts(stories)).values())
    counters = await stores.stories.counters(stories)
    impressions = sum(c.get(IMPRESSIONS, 0) for c in counters.values())
    ok = run.calls - run.errors
    return {"first": run.firsts, "repeat": ok - run.firsts, "viewers": viewers,
            "impressions": impressions,
            "exact": viewers == run.firsts and impressions == ok}  # fmt: skip


async def check_votes(stores: Any, stories: list[int], run: Run) -> dict[str, Any]:
    """Every (story, option) tally equals the votes the clients were told succeeded,
    and sticker taps equal the votes."""
    from datasources.stories.records import STICKER_TAPS

    counted: Counter[tuple[int, int]] = Counter()
    for story, stickers in (await stores.stories.tallies(stories)).items():
        for index, tally in stickers.items():
            for option, n in tally.option_counts.items():
                if n:
                    counted[(story, option if index == 0 else -1)] += n
    counters = await stores.stories.counters(stories)
    taps = sum(c.get(STICKER_TAPS, 0) for c in counters.values())
    votes = sum(run.votes.values())
    return {"counted": sum(counted.values()), "votes": votes, "taps": taps,
            "exact": counted == run.votes and taps == votes}  # fmt: skip


# ── the run ──────────────────────────────────────────────────────────────


async def bench(settings: Any, seconds: float, clients: int, spread: bool) -> dict[Any, Any]:
    import httpx

    from datasources.migrate import upgrade
    from server.app import create_app

    await fresh_database(settings.resolved_database_url)
    await upgrade(settings.resolved_database_url)
    app = create_app(settings)
    stores = app.state.runtime.stores
    results: dict[Any, Any] = {}
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                print(f"[bench] seeding {clients} viewers", flush=True)
                seeder = Seeder(app, http)
                await seeder.start(clients)
                kinds = {"graph": graph_steps(http), "baseline": store_steps(stores)}

                # Warm-up of every path, and calibration: how many stories each viewer
                # gets through, so that the timed runs never run out of first views.
                warm = await seeder.stories(20)
                for seen, vote in kinds.values():
                    await drive(seen, seeder.viewers, warm, CALIBRATION_SECONDS / 2, True)
                    await drive(vote, seeder.viewers, warm[:5], CALIBRATION_SECONDS / 2, False)
                probe = await drive(
                    kinds["baseline"][0], seeder.viewers, warm, CALIBRATION_SECONDS, True
                )
                steps = math.ceil(3 * probe.rate * seconds / clients) + 20
                print(f"[bench] seeding 2 x {steps} stories (the store took "
                      f"~{probe.rate:.0f} views/s in calibration)", flush=True)  # fmt: skip
                pools = {kind: await seeder.stories(steps) for kind in kinds}
                for measure, index, wrap in (("seen", 0, True), ("vote", 1, False)):
                    for kind, pair in kinds.items():
                        print(f"[bench] {measure} {kind}: {seconds:g} s, {clients} clients",
                              flush=True)  # fmt: skip
                        results[(measure, kind)] = await drive(
                            pair[index], seeder.viewers, pools[kind], seconds, wrap, spread
                        )
                for kind, pool in pools.items():
                    results[("seen-check", kind)] = await check_views(
                        stores, pool, results[("seen", kind)]
                    )
                    results[("vote-check", kind)] = await check_votes(
                        stores, pool, results[("vote", kind)]
                    )
                results["stories"] = steps
    finally:
        await app.state.runtime.close()
        await drop_mongo(settings)
    return results


def describe(settings: Any) -> str:
    url = settings.resolved_database_url
    relational = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    if settings.mongo_url:
        return f"MongoDB store ({settings.mongo_url}; users in {relational})"
    return f"relational store on {relational}"


def report(
    settings: Any, results: dict[Any, Any], seconds: float, clients: int, spread: bool
) -> None:
    print(f"\nstories: the in-process ASGI app vs raw StoryStore writes, {describe(settings)},")
    together = "each on its own story" if spread else "all on the same story at once"
    together = f" ({together})" if clients > 1 else ""
    print(f"{clients} clients{together}, {seconds:g} s each, "
          f"{results['stories']} stories a side")  # fmt: skip
    print(f"{'':26} {'ops/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'calls':>8} {'errors':>7}")
    labels = {
        ("seen", "graph"): "markStorySeen (graph)",
        ("seen", "baseline"): "add_viewer+bump (store)",
        ("vote", "graph"): "poll vote (graph)",
        ("vote", "baseline"): "add_response+bump (store)",
    }
    for measure in ("seen", "vote"):
        for kind in ("graph", "baseline"):
            r = results[(measure, kind)]
            print(f"{labels[(measure, kind)]:26} {r.rate:9.1f} {r.percentile(0.5):9.2f} "
                  f"{r.percentile(0.99):9.2f} {r.calls:8d} {r.errors:7d}")  # fmt: skip
            if r.first_error:
                print(f"  first error: {r.first_error}")
            if r.exhausted:
                print(f"  {r.exhausted} clients ran out of stories to vote on (too few seeded)")
        ratio = results[(measure, "graph")].rate / results[(measure, "baseline")].rate
        name = "markStorySeen" if measure == "seen" else "poll votes"
        print(f"  ratio graph/baseline {name}/s: {ratio:.2f}")
        for kind in ("graph", "baseline"):
            if measure == "seen":
                c = results[("seen-check", kind)]
                print(f"  {kind}: {c['first']} first views ({c['viewers']} unique viewers stored), "
                      f"{c['repeat']} repeat views, {c['impressions']} impressions; "
                      f"exact: {'yes' if c['exact'] else 'no'}")  # fmt: skip
            else:
                c = results[("vote-check", kind)]
                exact = "yes" if c["exact"] else "no"
                print(f"  {kind}: {c['votes']} votes accepted, {c['counted']} in the tallies, "
                      f"{c['taps']} sticker taps; exact: {exact}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--database-url", default="", help="PostgreSQL (default: SQLite)")
    parser.add_argument("--mongo-url", default="", help=f"stories in MongoDB ({DEFAULT_MONGO})")
    parser.add_argument("--store", choices=("relational", "mongo"), default=None)
    parser.add_argument(
        "--spread", action="store_true", help="clients on different stories, not the same one"
    )
    args = parser.parse_args()
    args.store = args.store or ("mongo" if args.mongo_url else "relational")
    data_dir = Path(tempfile.mkdtemp(prefix="entativa-bench-"))
    os.environ.setdefault("ENTATIVA_DATA_DIR", str(data_dir))
    settings = make_settings(args, data_dir)
    try:
        results = asyncio.run(bench(settings, args.seconds, args.clients, args.spread))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    report(settings, results, args.seconds, args.clients, args.spread)
    checks = [results[(c, k)]["exact"] for c in ("seen-check", "vote-check")
              for k in ("graph", "baseline")]  # fmt: skip
    if not all(checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
