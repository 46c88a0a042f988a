"""Schema fuzzing: generated queries and mutations never crash the server.

hypothesis-graphql builds valid operations for every root field of the API schema
with random arguments; half are sent signed in, half signed out. No answer may be
an HTTP 500 or carry INTERNAL_SERVER_ERROR, and afterwards every denormalized
counter still equals the rows it counts.

One app (SQLite, rate limits off) serves the whole run, so the test does not take
the per-backend `database_url` fixture: it runs once, not once per backend. The
operations are derandomized, so CI sends the same ones every run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC
from pathlib import Path
from typing import Any

import graphql
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, queries
from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased

from datasources.posts.tables import (
    CommentLikeRow,
    CommentRow,
    PostLikeRow,
    PostRow,
    PostSaveRow,
)
from datasources.posts.take_tables import TakeLikeRow, TakeRow
from resolvers.ids import encode_id
from schema.supergraph import print_supergraph
from server.app import create_app
from server.settings import RateLimits, Settings
from tests.conftest import Account, GraphQLClient, create_users
from tests.posts_helpers import add_comment, create_post
from tests.stories_support import create_story
from tests.test_takes import create_take

EXAMPLES = 750  # × 4 operations (query and mutation, signed in and out): 3,000
OPERATIONS = 4 * EXAMPLES

SDL = print_supergraph()
SCHEMA = graphql.build_schema(SDL)

# Ids: mostly rows the seed creates on a fresh database (autoincrement from 1) or a
# row that does not exist, typed after the argument or field that takes them
# (`postId`, `deletePost(id:)` → a Post id), so operations reach the resolvers'
# logic instead of stopping at "not a valid Post id"; sometimes random text.
ID_TYPES = (
    "TakeTemplate",
    "TakeTrend",
    "Notification",
    "Highlight",
    "Comment",
    "Sticker",
    "Story",
    "Media",
    "Post",
    "Take",
    "User",
)  # longest first: "TakeTrend" is found before "Take"
ALIASES = {"parent": "Comment", "video": "Media", "avatar": "Media", "origin": "Story"}
MARK = "\x00pk:"


def _id_type(*names: str) -> str:
    """The node type an argument named like `names` (innermost first) most likely takes."""
    for name in names:
        lowered = name.lower()
        for kind in ID_TYPES:
            if kind.lower() in lowered:
                return kind
        for alias, kind in ALIASES.items():
            if lowered.startswith(alias):
                return kind
    return "User"


# One-of inputs (`@strawberry.input(one_of=True)`): the API SDL carries no @oneOf
# (schema/supergraph.py), so the generator fills several keys; keep the first set one.
ONE_OF = {"StickerInput", "StickerResponseInput"}


class _Valid(graphql.Visitor):
    """Makes generated values what a client would send: each `MARK<pk>` string becomes
    the global id of the likely type, and a one-of input keeps a single key."""

    def __init__(self, types: graphql.TypeInfo) -> None:
        super().__init__()
        self.types = types
        self.names: list[str] = []

    def enter(self, node: Any, *_: Any) -> Any:
        if isinstance(node, graphql.FieldNode | graphql.ArgumentNode | graphql.ObjectFieldNode):
            self.names.append(node.name.value)
        elif isinstance(node, graphql.StringValueNode) and node.value.startswith(MARK):
            kind = _id_type(*reversed(self.names))
            return graphql.StringValueNode(value=encode_id(kind, node.value[len(MARK) :]))
        return None

    def leave(self, node: Any, *_: Any) -> Any:
        if isinstance(node, graphql.FieldNode | graphql.ArgumentNode | graphql.ObjectFieldNode):
            self.names.pop()
        elif isinstance(node, graphql.ObjectValueNode):
            type_ = graphql.get_named_type(self.types.get_input_type())
            if type_ is not None and type_.name in ONE_OF:
                given = [f for f in node.fields if not isinstance(f.value, graphql.NullValueNode)]
                return graphql.ObjectValueNode(fields=tuple(given[:1] or node.fields[:1]))
        return None


def _print(document: graphql.DocumentNode) -> str:
    types = graphql.TypeInfo(SCHEMA)
    return graphql.print_ast(graphql.visit(document, graphql.TypeInfoVisitor(types, _Valid(types))))


def _string(values: st.SearchStrategy[str]) -> st.SearchStrategy[graphql.ValueNode]:
    return values.map(lambda v: graphql.StringValueNode(value=v))


SCALARS: dict[str, st.SearchStrategy[graphql.ValueNode]] = {
    "ID": _string(
        st.sampled_from([1, 2, 3, 4, 999_999]).map(lambda pk: f"{MARK}{pk}") | st.text(max_size=12)
    ),
    "DateTime": _string(
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()) | st.text(max_size=10)
    ),
    "Base64": _string(
        st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=8)
    ),
    "Upload": st.just(graphql.NullValueNode()),  # files come as multipart, never inline
}

QUERIES = queries(SCHEMA, custom_scalars=SCALARS, print_ast=_print)
MUTATIONS = mutations(SCHEMA, custom_scalars=SCALARS, print_ast=_print)


def _failures(status: int, body: dict[str, Any]) -> list[str]:
    problems = [f"HTTP {status}"] if status >= 500 else []
    for error in body.get("errors") or []:
        if (error.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR":
            problems.append(json.dumps(error))
    return problems


class Fuzz:
    """One app, one signed-in account and a little seeded data for the whole run."""

    def __init__(self, tmp: Path, template: Path) -> None:
        shutil.copy(template, tmp / "entativa.db")
        self.settings = Settings(
            data_dir=tmp / "data",
            database_url=f"sqlite+aiosqlite:///{tmp / 'entativa.db'}",
            secret_key="test-secret-key-that-is-long-enough-for-hs256",
            media_dir=tmp / "media",
            story_sweep_seconds=0,
            rate_limits=RateLimits(enabled=False),
        )
        self.stack = AsyncExitStack()
        self.sent = 0
        self.codes: Counter[str] = Counter()  # error codes seen, for a run's summary

    async def start(self) -> None:
        self.app = create_app(self.settings)
        await self.stack.enter_async_context(self.app.router.lifespan_context(self.app))
        self.stack.push_async_callback(self.app.state.runtime.close)
        transport = httpx.ASGITransport(app=self.app)
        self.http = await self.stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://testserver")
        )
        gql = GraphQLClient(self.http)
        self.me, other, _ = await create_users(self.app, ["fuzzer", "other", "third"])
        for author in (self.me, other):
            post = await create_post(gql, author, "seed #fuzz @third")
            comment = await add_comment(gql, author, postId=post["id"])
            await add_comment(gql, other, postId=post["id"], parentId=comment["id"])
            take = await create_take(self.app, gql, author)
            await add_comment(gql, author, takeId=take["id"])
            await create_story(self.app, gql, author)

    async def send(self, document: str, account: Account | None) -> None:
        headers = {"Authorization": f"Bearer {account.token}"} if account else {}
        response = await self.http.post(
            "/socialink/graphql", json={"query": document}, headers=headers
        )
        self.sent += 1
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        self.codes.update(
            (e.get("extensions") or {}).get("code", "?") for e in body.get("errors") or []
        )
        problems = _failures(response.status_code, body)
        assert not problems, f"\n{document}\n→ {response.status_code} {response.text}"
        if account and "signOut" in document:  # the fuzzer may end our session
            session = await self.app.state.runtime.auth.start_session(
                int(base64.urlsafe_b64decode(account.id + "==").decode().split(":")[1]),
                account.platform,
            )
            account.token = session.access_token

    async def inconsistencies(self) -> list[str]:
        """Every denormalized counter that differs from the rows it counts."""
        shared = aliased(PostRow)
        checks: dict[str, tuple[Any, Any, Any]] = {
            "posts.like_count": (PostRow, PostRow.like_count, select(func.count()).where(
                PostLikeRow.post_id == PostRow.id)),
            "posts.save_count": (PostRow, PostRow.save_count, select(func.count()).where(
                PostSaveRow.post_id == PostRow.id)),
            "posts.share_count": (PostRow, PostRow.share_count, select(func.count()).where(
                shared.shared_post_id == PostRow.id)),
            "posts.comment_count": (PostRow, PostRow.comment_count, select(func.count()).where(
                and_(CommentRow.subject_type == "post", CommentRow.subject_id == PostRow.id))),
            "comments.like_count": (CommentRow, CommentRow.like_count, select(func.count()).where(
                CommentLikeRow.comment_id == CommentRow.id)),
            "takes.like_count": (TakeRow, TakeRow.like_count, select(func.count()).where(
                TakeLikeRow.take_id == TakeRow.id)),
            "takes.comment_count": (TakeRow, TakeRow.comment_count, select(func.count()).where(
                and_(CommentRow.subject_type == "take", CommentRow.subject_id == TakeRow.id))),
        }  # fmt: skip
        wrong = []
        async with self.app.state.runtime.stores.db.session() as session:
            for name, (table, column, rows) in checks.items():
                counted = rows.correlate(table).scalar_subquery()
                found = await session.execute(
                    select(table.id, column, counted).where(column != counted)
                )
                wrong += [f"{name} of {pk}: {have} ≠ {n} rows" for pk, have, n in found]
        return wrong


def test_generated_operations_never_fail_internally(tmp_path: Path, sqlite_template: Path) -> None:
    fuzz = Fuzz(tmp_path, sqlite_template)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(fuzz.start())

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(query=QUERIES, mutation=MUTATIONS)
        def operations(query: str, mutation: str) -> None:
            for document in (query, mutation):
                loop.run_until_complete(fuzz.send(document, fuzz.me))
                loop.run_until_complete(fuzz.send(document, None))

        operations()
        print(f"{fuzz.sent} operations; error codes: {dict(fuzz.codes)}")
        assert fuzz.sent >= OPERATIONS
        assert loop.run_until_complete(fuzz.inconsistencies()) == []
    finally:
        loop.run_until_complete(fuzz.stack.aclose())
        loop.close()
