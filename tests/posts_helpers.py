"""Helpers of the posts tests: GraphQL operations, outbox events, table snapshots."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from datasources.events.tables import OutboxRow
from datasources.posts.tables import (
    CommentLikeRow,
    CommentRow,
    LocationRow,
    PostHashtagRow,
    PostLikeRow,
    PostMediaRow,
    PostMentionRow,
    PostRow,
    PostSaveRow,
)
from tests.conftest import Account, GraphQLClient, Result

POSTS_TABLES = (
    PostRow,
    PostMediaRow,
    PostHashtagRow,
    PostMentionRow,
    PostLikeRow,
    PostSaveRow,
    LocationRow,
    CommentRow,
    CommentLikeRow,
)

POST_FIELDS = """
id caption hashtags visibility createdAt editedAt
likeCount commentCount shareCount saveCount viewerHasLiked viewerHasSaved
author { id username } media { id } mentions { username }
location { id name latitude longitude }
sharedPost { id caption }
"""

CREATE = f"mutation($input: CreatePostInput!) {{ createPost(input: $input) {{ {POST_FIELDS} }} }}"
EDIT = f"mutation($id: ID!, $c: String!) {{ editPost(id: $id, caption: $c) {{ {POST_FIELDS} }} }}"
DELETE = "mutation($id: ID!) { deletePost(id: $id) }"
SHARE = f"mutation($input: SharePostInput!) {{ sharePost(input: $input) {{ {POST_FIELDS} }} }}"
POST = f"query($id: ID!) {{ post(id: $id) {{ {POST_FIELDS} }} }}"
COMMENT_FIELDS = """
id body likeCount viewerHasLiked createdAt author { username }
parent { id } subject { __typename ... on Post { id commentCount } }
"""
ADD_COMMENT = (
    f"mutation($input: AddCommentInput!) {{ addComment(input: $input) {{ {COMMENT_FIELDS} }} }}"
)
DELETE_COMMENT = "mutation($id: ID!) { deleteComment(id: $id) }"


def mark(field: str) -> str:
    """likePost, savePost… as a mutation returning the post's counters."""
    arg = "commentId" if "Comment" in field else "postId"
    counts = (
        "likeCount viewerHasLiked"
        if "Comment" in field
        else ("likeCount saveCount viewerHasLiked viewerHasSaved")
    )
    return f"mutation($id: ID!) {{ {field}({arg}: $id) {{ id {counts} }} }}"


async def create_post(
    gql: GraphQLClient, author: Account, caption: str | None = "hello", **fields: Any
) -> dict[str, Any]:
    result = await gql(
        CREATE,
        {"input": {"caption": caption, **fields}},
        token=author.token,
        platform=author.platform,
    )
    return result.ok()["createPost"]  # type: ignore[no-any-return]


async def add_comment(
    gql: GraphQLClient, author: Account, body: str = "nice", **ids: Any
) -> dict[str, Any]:
    result = await gql(
        ADD_COMMENT, {"input": {"body": body, **ids}}, token=author.token, platform=author.platform
    )
    return result.ok()["addComment"]  # type: ignore[no-any-return]


async def see_post(gql: GraphQLClient, viewer: Account | None, post_id: str, **kw: Any) -> Result:
    return await gql(
        POST,
        {"id": post_id},
        token=viewer.token if viewer else None,
        platform=kw.get("platform") or (viewer.platform if viewer else "socialink"),
    )


async def events(app: Any, *types: str) -> list[dict[str, Any]]:
    """Outbox events (parsed), oldest first, optionally only of `types`."""
    async with app.state.runtime.stores.db.session() as session:
        payloads = await session.scalars(select(OutboxRow.payload).order_by(OutboxRow.id))
        parsed = [json.loads(p) for p in payloads]
    return [e for e in parsed if not types or e["type"] in types]


async def snapshot(app: Any) -> dict[str, Any]:
    """Rows of every posts table, counters, and post/comment events: 'nothing stored'."""
    counts: dict[str, Any] = {}
    async with app.state.runtime.stores.db.session() as session:
        for table in POSTS_TABLES:
            counts[table.__tablename__] = int(
                await session.scalar(select(func.count()).select_from(table)) or 0
            )
        counts["counters"] = (
            await session.execute(
                select(
                    PostRow.id,
                    PostRow.like_count,
                    PostRow.comment_count,
                    PostRow.share_count,
                    PostRow.save_count,
                    PostRow.caption,
                ).order_by(PostRow.id)
            )
        ).all()
    counts["events"] = len(
        [e for e in await events(app) if e["subject"]["type"] in ("post", "comment")]
    )
    return counts
