"""Helpers of the stories API tests: each runs on the relational story store (SQLite
and PostgreSQL) and on MongoDB (the Mongo-wire server at 127.0.0.1:27017).

A test module opts in with `pytestmark = STORE_BACKENDS` and imports `settings`
(which overrides conftest's to point stories at a fresh MongoDB database) and
`clock` (a controllable clock: `clock.move(hours=25)` expires every story).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from datasources.sql import utcnow
from resolvers.ids import encode_id, split_id
from server.settings import Settings
from tests.conftest import Account, GraphQLClient, insert_media
from tests.services import require

MONGO_HOST, MONGO_PORT = "127.0.0.1", 27017

STORE_BACKENDS = pytest.mark.parametrize(
    ("database_url", "story_store"),
    [("sqlite", "relational"), ("postgresql", "relational"), ("sqlite", "mongo")],
    indirect=["database_url"],
    ids=["sqlite", "postgresql", "mongo"],
)


@pytest.fixture
async def settings(settings: Settings, story_store: str) -> AsyncIterator[Settings]:
    """conftest's settings, with stories in a MongoDB database of their own when asked."""
    if story_store == "relational":
        yield settings
        return
    require("MongoDB", MONGO_HOST, MONGO_PORT)
    name = f"entativa_api_{uuid.uuid4().hex[:12]}"
    yield settings.model_copy(
        update={"mongo_url": f"mongodb://{MONGO_HOST}:{MONGO_PORT}", "mongo_database": name}
    )
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://{MONGO_HOST}:{MONGO_PORT}"
    )
    await client.drop_database(name)
    await client.close()


class Clock:
    """A clock the app reads (Stores.clock) that tests move forward."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(app: Any) -> Clock:
    controlled = Clock()
    app.state.runtime.stores.clock = controlled
    return controlled


def pk(global_id: str) -> int:
    parts = split_id(global_id)
    assert parts is not None
    return int(parts[1])


STORY_FIELDS = """
id caption audience createdAt expiresAt viewerHasSeen
author { id username } media { id }
stickers {
  __typename id x y width height rotation
  ... on PollSticker { question options { text voteCount percent } viewerVote }
  ... on QuizSticker { question quizOptions: options correctOption viewerAnswer answerCounts }
  ... on QuestionSticker { prompt viewerResponse }
  ... on CountdownSticker { title endsAt subscriberCount viewerIsSubscribed }
  ... on SliderSticker { question emoji averageValue responseCount viewerValue }
  ... on MentionSticker { user { username } }
  ... on LinkSticker { url label tapCount }
  ... on LocationSticker { location { name latitude longitude } }
  ... on HashtagSticker { hashtag }
  ... on AddYoursSticker { prompt participantCount originStory { id } }
}
"""
CREATE_STORY = (
    f"mutation($input: CreateStoryInput!) {{ createStory(input: $input) {{ {STORY_FIELDS} }} }}"
)
STORY = f"query($id: ID!) {{ story(id: $id) {{ {STORY_FIELDS} }} }}"
RESPOND = f"""
mutation($input: RespondToStickerInput!) {{
  respondToSticker(input: $input) {{ {STORY_FIELDS.split("stickers {")[1].rsplit("}", 1)[0]} }}
}}
"""
SEEN = (
    "mutation($id: ID!, $r: String) { markStorySeen(storyId: $id, reaction: $r) "
    "{ id viewerHasSeen } }"
)
INSIGHTS = """
query($id: ID!) { story(id: $id) {
  viewCount
  insights { reach impressions replies stickerTaps linkTaps exits forwardTaps backTaps }
} }
"""


def placed(kind: str, x: float = 0.5, y: float = 0.5, **fields: Any) -> dict[str, Any]:
    return {"sticker": {kind: fields}, "placement": {"x": x, "y": y}}


async def create_story(
    app: Any,
    gql: GraphQLClient,
    author: Account,
    *,
    media: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    media_id = media or await insert_media(app, author)
    result = await gql(CREATE_STORY, {"input": {"mediaId": media_id, **fields}}, token=author.token)
    return result.ok()["createStory"]  # type: ignore[no-any-return]


async def respond(
    gql: GraphQLClient, viewer: Account, story: dict[str, Any], index: int, **response: Any
) -> Any:
    variables = {
        "input": {
            "storyId": story["id"],
            "stickerId": story["stickers"][index]["id"],
            "response": response,
        }
    }
    return await gql(RESPOND, variables, token=viewer.token)


async def run(gql: GraphQLClient, query: str, actor: Account, **variables: Any) -> Any:
    return (await gql(query, variables, token=actor.token, platform=actor.platform)).ok()


FOLLOW = "mutation($u: ID!) { follow(userId: $u) { following } }"
BLOCK = "mutation($u: ID!) { block(userId: $u) { blocking } }"
ADD_CLOSE = "mutation($u: ID!) { addCloseFriend(userId: $u) { isCloseFriend } }"


def story_gid(story_id: int) -> str:
    return encode_id("Story", story_id)
