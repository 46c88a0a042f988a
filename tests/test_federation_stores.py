"""Federation end to end on the real stores: every subgraph as its own process, an
`entativa worker`, `@apollo/gateway` in front, and the monolith beside them.

All of them share PostgreSQL (database `entativa_federation`), Redis (db 12), the
Mongo-wire server (stories; a database per run), the OpenSearch-API server (search;
an index per run) and the Kafka broker (a topic and group namespace per run). The
data is written through the gateway (uploads straight to the media subgraph: the
gateway does not forward multipart requests); the worker relays the events and its
consumers index them and build notifications. Then each cross-subgraph query must
answer through the gateway exactly as the monolith answers it.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy.engine import make_url

from datasources.migrate import upgrade
from datasources.search.elastic import ElasticSearchIndex
from resolvers.ids import encode_id
from schema.domains import DOMAINS
from tests.deployment_support import (
    Deployment,
    environment,
    interop_node,
    launch,
)
from tests.services import KAFKA_BOOTSTRAP, POSTGRES_URL, REDIS_URL, require, reset_postgres

DATABASE_URL = make_url(POSTGRES_URL).set(database="entativa_federation").render_as_string(False)
REDIS = urlsplit(REDIS_URL)._replace(path="/12").geturl()  # a db of its own
MONGO_URL = "mongodb://127.0.0.1:27017"
SEARCH_URL = "http://127.0.0.1:9200"
SECRET = "federation-secret-key-that-is-long-enough-for-hs256"
SETTLE_SECONDS = 30.0  # the worker's consumers index and notify well within this


def require_stores() -> None:
    postgres = make_url(POSTGRES_URL)
    require("PostgreSQL", postgres.host or "127.0.0.1", postgres.port or 5432)
    redis = urlsplit(REDIS)
    require("Redis", redis.hostname or "127.0.0.1", redis.port or 6379)
    require("The Mongo-wire server", "127.0.0.1", 27017)
    require("The OpenSearch-API server", "127.0.0.1", 9200)
    host, _, port = KAFKA_BOOTSTRAP.partition(":")
    require("The Kafka broker", host, int(port or 9092))


def store_environment(run: str, root: Path) -> dict[str, str]:
    return environment(
        database_url=DATABASE_URL,
        redis_url=REDIS,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        kafka_topic_namespace=f"federation-{run}",
        relay_poll_seconds="0.1",  # the servers commit in other processes than the relay
        mongo_url=MONGO_URL,
        mongo_database=f"entativa_federation_{run}",
        search_backend="elasticsearch",
        elasticsearch_url=SEARCH_URL,
        elasticsearch_index=f"federation-{run}",
        elasticsearch_opensearch_compatible="true",  # osmem-server refuses the ES media type
        data_dir=str(root / "data"),
        secret_key=SECRET,
        log_level="WARNING",
        # every request reaches a subgraph from one address, the gateway's
        rate_limits='{"enabled": false}',
    )


def search_index(run: str) -> ElasticSearchIndex:
    return ElasticSearchIndex(SEARCH_URL, f"federation-{run}", opensearch_compatible=True)


async def prepare(run: str) -> None:
    """An empty, migrated database and the search index's first generation, made
    before any process starts (several creating them at once would race)."""
    await reset_postgres(DATABASE_URL)
    await upgrade(DATABASE_URL)
    index = search_index(run)
    try:
        await index.ensure_index()
    finally:
        await index.close()


async def clean_up(run: str) -> None:
    """Drop what this run made in the shared MongoDB and search servers."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO_URL)
    try:
        await client.drop_database(f"entativa_federation_{run}")
    finally:
        await client.close()
    index = search_index(run)
    try:
        await index.drop()
    finally:
        await index.close()


# ───────────────────────── talking to the deployment ─────────────────────────


def post(url: str, query: str, variables: dict[str, Any] | None = None, token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"query": query, "variables": variables or {}}
    response = httpx.post(url, json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def ok(url: str, query: str, variables: dict[str, Any] | None = None, token: str = "") -> Any:
    answer = post(url, query, variables, token)
    assert "errors" not in answer, answer
    return answer["data"]


def png(color: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(deployment: Deployment, token: str, image: bytes, alt: str) -> str:
    """uploadMedia on the media subgraph itself (a GraphQL multipart request)."""
    query = "mutation($f: Upload!, $a: String) { uploadMedia(file: $f, altText: $a) { id } }"
    operations = {"query": query, "variables": {"f": None, "a": alt}}
    response = httpx.post(
        deployment.url("media"),
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.f"]})},
        files={"0": ("photo.png", image, "image/png")},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    media_id: str = response.json()["data"]["uploadMedia"]["id"]
    return media_id


def settle(
    deployment: Deployment,
    what: str,
    ask: tuple[str, dict[str, Any], str],
    done: Callable[[dict[str, Any]], bool],
) -> None:
    """Ask the monolith (query, variables, token) until `done` holds for the data: the
    worker's consumers index and notify asynchronously."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        answer = post(deployment.url("monolith"), *ask)
        if "errors" not in answer and done(answer["data"]):
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} did not settle in {SETTLE_SECONDS}s: {answer}\n"
                + deployment.logged_errors()
            )
        time.sleep(0.2)


SIGN_UP = """mutation($input: SignUpInput!) {
  signUp(input: $input) { accessToken user { id username } }
}"""
UPDATE_PROFILE = "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }"
FOLLOW = "mutation($u: ID!) { follow(userId: $u) { following } }"
POST_FIELDS = """
  id caption hashtags createdAt likeCount
  author { username avatar { url altText } }
  media { id url mimeType width height owner { username } }
"""
CREATE_POST = (
    f"mutation($input: CreatePostInput!) {{ createPost(input: $input) {{ {POST_FIELDS} }} }}"
)
LIKE = "mutation($p: ID!) { likePost(postId: $p) { likeCount } }"
COMMENT = "mutation($input: AddCommentInput!) { addComment(input: $input) { id } }"
CREATE_STORY = "mutation($input: CreateStoryInput!) { createStory(input: $input) { id } }"
REPLY = "mutation($s: ID!, $b: String!) { replyToStory(storyId: $s, body: $b) { id } }"
CREATE_GROUP = "mutation($input: CreateGroupInput!) { createGroup(input: $input) { id } }"


def seed(deployment: Deployment) -> dict[str, Any]:
    """Three people, posts with photos, comments, a like, stories, a story reply and a
    group conversation, written through the gateway; returns tokens and ids by name."""
    gateway = deployment.gateway
    ids: dict[str, Any] = {}
    for name in ("alice", "bob", "carol"):
        payload = ok(
            gateway,
            SIGN_UP,
            {
                "input": {
                    "username": name,
                    "email": f"{name}@example.com",
                    "password": "correct horse battery",
                    "displayName": name.title(),
                }
            },
        )["signUp"]
        ids[name], ids[f"{name}:token"] = payload["user"]["id"], payload["accessToken"]
    alice, bob, carol = (ids[f"{n}:token"] for n in ("alice", "bob", "carol"))
    avatar = upload(deployment, alice, png((200, 80, 40), (64, 64)), "alice's face")
    ok(gateway, UPDATE_PROFILE, {"input": {"avatarMediaId": avatar, "bio": "sailor"}}, alice)
    for follower, followee in (("bob", "alice"), ("carol", "alice"), ("carol", "bob")):
        ok(gateway, FOLLOW, {"u": ids[followee]}, ids[f"{follower}:token"])
    photo = upload(deployment, alice, png((250, 140, 0), (120, 80)), "a sunset")
    sunset = ok(
        gateway,
        CREATE_POST,
        {"input": {"caption": "Sunset over the #harbor", "mediaIds": [photo]}},
        alice,
    )["createPost"]
    ids["sunset"], ids["sunset:created"] = sunset["id"], sunset
    run = upload(deployment, bob, png((20, 120, 220), (80, 120)), "a run")
    ids["run"] = ok(
        gateway,
        CREATE_POST,
        {"input": {"caption": "Morning run along the #harbor #fitness", "mediaIds": [run]}},
        bob,
    )["createPost"]["id"]
    ok(
        gateway,
        CREATE_POST,
        {"input": {"caption": "Weekend plans, followers only", "visibility": "FOLLOWERS"}},
        alice,
    )
    ok(gateway, LIKE, {"p": ids["sunset"]}, bob)
    ok(gateway, COMMENT, {"input": {"postId": ids["sunset"], "body": "Gorgeous!"}}, carol)
    ok(gateway, COMMENT, {"input": {"postId": ids["run"], "body": "Keep going"}}, alice)
    poll = {
        "sticker": {"poll": {"question": "Sail tomorrow?", "options": ["yes", "no"]}},
        "placement": {"x": 0.5, "y": 0.4},
    }
    frame = upload(deployment, alice, png((10, 10, 60), (90, 160)), "harbor lights")
    ids["lights"] = ok(
        gateway,
        CREATE_STORY,
        {"input": {"mediaId": frame, "caption": "Harbor lights", "stickers": [poll]}},
        alice,
    )["createStory"]["id"]
    frame = upload(deployment, bob, png((90, 200, 90), (90, 160)), "the finish")
    ok(gateway, CREATE_STORY, {"input": {"mediaId": frame, "caption": "Done!"}}, bob)
    ok(gateway, REPLY, {"s": ids["lights"], "b": "Beautiful"}, bob)
    group = {
        "groupId": "aGFyYm9yLWNyZXc=",
        "name": "Harbor crew",
        "memberIds": [ids["bob"], ids["carol"]],
    }
    ok(gateway, CREATE_GROUP, {"input": group}, alice)
    return ids


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    """Every subgraph, the monolith and a worker on the real stores, the gateway in
    front, and the seeded data (in `deployment.ids`)."""
    node = interop_node()
    require_stores()
    run = uuid.uuid4().hex[:10]
    # not under pytest's basetemp: concurrent pytest sessions prune its older directories
    root = Path(tempfile.mkdtemp(prefix="entativa-federation-"))
    try:
        asyncio.run(prepare(run))
        env = store_environment(run, root)
        with launch(node, env, root, DOMAINS, worker=True) as running:
            running.ids = seed(running)
            yield running
    finally:
        asyncio.run(clean_up(run))
        shutil.rmtree(root, ignore_errors=True)


def same_answer(
    deployment: Deployment, query: str, token: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The gateway's answer, asserted equal to the monolith's and free of errors."""
    from_monolith = post(deployment.url("monolith"), query, variables, token)
    through_gateway = post(deployment.gateway, query, variables, token)
    assert "errors" not in from_monolith, (from_monolith, deployment.logged_errors())
    assert through_gateway == from_monolith, deployment.logged_errors()
    data: dict[str, Any] = from_monolith["data"]
    return data


# ───────────────────────── cross-subgraph queries ─────────────────────────

FEED = """
query {
  feed(first: 10) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id caption hashtags visibility createdAt likeCount commentCount viewerHasLiked
      author { id username displayName bio avatar { id url mimeType width height altText } }
      media { id kind url mimeType width height sizeBytes altText owner { username } }
      comments(first: 2) { edges { node { body author { username avatar { url } } } } }
    } }
  }
}
"""


def test_feed_with_authors_and_media(deployment: Deployment) -> None:
    carol = deployment.ids["carol:token"]
    feed = same_answer(deployment, FEED, carol)["feed"]
    posts = [edge["node"] for edge in feed["edges"]]
    assert [p["caption"] for p in posts] == [
        "Weekend plans, followers only",
        "Morning run along the #harbor #fitness",
        "Sunset over the #harbor",
    ]
    sunset = posts[2]
    assert sunset["author"]["avatar"]["altText"] == "alice's face"
    assert sunset["media"][0]["owner"] == {"username": "alice"}
    assert sunset["media"][0]["width"] == 120 and sunset["likeCount"] == 1
    assert sunset["comments"]["edges"][0]["node"]["author"]["username"] == "carol"


PROFILE = """
query {
  user(username: "alice") {
    id username displayName followerCount
    avatar { url owner { username } }
    posts(first: 5) { edges { node { caption media { url } } } }
    stories { id caption media { url mimeType } author { username } }
  }
}
"""


def test_a_profile_gathers_posts_and_stories_contributed_by_their_subgraphs(
    deployment: Deployment,
) -> None:
    user = same_answer(deployment, PROFILE, deployment.ids["bob:token"])["user"]
    assert user["followerCount"] == 2
    assert [edge["node"]["caption"] for edge in user["posts"]["edges"]] == [
        "Weekend plans, followers only",
        "Sunset over the #harbor",
    ]
    assert [story["caption"] for story in user["stories"]] == ["Harbor lights"]


TRAY = """
query {
  storyTray {
    hasUnseen latestAt
    user { username displayName avatar { url } }
    stories {
      id caption audience createdAt expiresAt viewerHasSeen
      author { username } media { id url mimeType width height owner { username } }
      stickers { __typename id x y ... on PollSticker { question options { text voteCount } } }
    }
  }
}
"""


def test_story_tray_with_authors_and_media(deployment: Deployment) -> None:
    tray = same_answer(deployment, TRAY, deployment.ids["carol:token"])["storyTray"]
    assert [item["user"]["username"] for item in tray] == ["bob", "alice"]
    assert all(item["hasUnseen"] for item in tray)
    lights = tray[1]["stories"][0]
    assert lights["media"]["owner"] == {"username": "alice"}
    assert lights["stickers"][0]["question"] == "Sail tomorrow?"


SEARCH = """
query($q: String!) {
  search(query: $q, first: 10) {
    totalCount
    edges { node { score highlight node {
      __typename
      ... on Post { id caption author { username avatar { url } } media { url } }
      ... on User { id username displayName avatar { url mimeType } }
      ... on Hashtag { name postCount }
    } } }
  }
}
"""


def hits(answer: dict[str, Any]) -> list[tuple[str, str]]:
    found = [edge["node"]["node"] for edge in answer["search"]["edges"]]
    return sorted(
        (hit["__typename"], hit.get("caption") or hit.get("username") or hit["name"])
        for hit in found
    )


def same_hits(deployment: Deployment, token: str, text: str) -> dict[str, Any]:
    """Like `same_answer`, but scores only approximately: their recency part decays
    between the two requests (a few millionths apart)."""
    answers = [
        post(url, SEARCH, {"q": text}, token)
        for url in (deployment.url("monolith"), deployment.gateway)
    ]
    for answer in answers:
        assert "errors" not in answer, (answer, deployment.logged_errors())
    scores = [
        [edge["node"].pop("score") for edge in answer["data"]["search"]["edges"]]
        for answer in answers
    ]
    from_monolith, through_gateway = answers
    assert through_gateway == from_monolith
    assert scores[1] == pytest.approx(scores[0], rel=1e-4)
    data: dict[str, Any] = from_monolith["data"]
    return data


def test_search_hits_resolve_across_subgraphs(deployment: Deployment) -> None:
    carol = deployment.ids["carol:token"]
    expected = [
        ("Hashtag", "harbor"),
        ("Post", "Morning run along the #harbor #fitness"),
        ("Post", "Sunset over the #harbor"),
    ]

    def indexed(data: dict[str, Any]) -> bool:
        tags = [e["node"]["node"] for e in data["search"]["edges"]]
        counted = [tag["postCount"] for tag in tags if tag["__typename"] == "Hashtag"]
        return hits(data) == expected and counted == [2]

    settle(deployment, "indexing of #harbor", (SEARCH, {"q": "harbor"}, carol), indexed)
    assert hits(same_hits(deployment, carol, "harbor")) == expected

    def found_alice(data: dict[str, Any]) -> bool:
        return ("User", "alice") in hits(data)

    settle(deployment, "indexing of alice", (SEARCH, {"q": "alice"}, carol), found_alice)
    people = same_hits(deployment, carol, "alice")
    users = [e["node"]["node"] for e in people["search"]["edges"]]
    alice = [hit for hit in users if hit["__typename"] == "User"]
    assert alice[0]["username"] == "alice" and alice[0]["avatar"]["mimeType"] == "image/png"


NOTIFICATIONS = """
query {
  unreadNotificationCount
  notifications(first: 10) {
    totalCount
    edges { node {
      id type actorCount summary isRead latestAt
      actors { username avatar { url } }
      subject {
        __typename
        ... on Post { id caption media { url } author { username } }
        ... on Comment { id body author { username } }
        ... on Story { id caption storyMedia: media { url } author { username } }
        ... on User { id username }
      }
    } }
  }
}
"""
EXPECTED_GROUPS = [("FOLLOW", 2), ("POST_COMMENT", 1), ("POST_LIKE", 1), ("STORY_REPLY", 1)]


def groups(data: dict[str, Any]) -> list[tuple[str, int]]:
    nodes = [edge["node"] for edge in data["notifications"]["edges"]]
    return sorted((node["type"], node["actorCount"]) for node in nodes)


def test_notification_groups_with_their_subjects(deployment: Deployment) -> None:
    alice = deployment.ids["alice:token"]
    ask: tuple[str, dict[str, Any], str] = (NOTIFICATIONS, {}, alice)
    settle(deployment, "alice's notifications", ask, lambda data: groups(data) == EXPECTED_GROUPS)
    found = same_answer(deployment, NOTIFICATIONS, alice)
    assert found["unreadNotificationCount"] == 4
    by_type = {edge["node"]["type"]: edge["node"] for edge in found["notifications"]["edges"]}
    assert by_type["POST_LIKE"]["subject"]["caption"] == "Sunset over the #harbor"
    assert by_type["POST_LIKE"]["subject"]["media"][0]["url"]
    assert by_type["STORY_REPLY"]["subject"]["caption"] == "Harbor lights"
    assert {a["username"] for a in by_type["FOLLOW"]["actors"]} == {"bob", "carol"}


CONVERSATIONS = """
query {
  conversations(first: 10) {
    totalCount
    edges { node {
      id kind name groupId epoch unreadCount lastActivityAt disappearingAfterSeconds
      members { username displayName isOnline lastSeenAt avatar { url } }
      readStates { user { username } readUpTo }
    } }
  }
}
"""


def test_conversations_with_their_members(deployment: Deployment) -> None:
    found = same_answer(deployment, CONVERSATIONS, deployment.ids["carol:token"])
    (group,) = [edge["node"] for edge in found["conversations"]["edges"]]
    assert group["kind"] == "GROUP" and group["name"] == "Harbor crew"
    members = {member["username"]: member for member in group["members"]}
    assert sorted(members) == ["alice", "bob", "carol"]
    assert members["alice"]["avatar"]["url"] and members["bob"]["avatar"] is None


def test_a_mutation_answers_across_subgraphs_as_the_monolith_reads_it(
    deployment: Deployment,
) -> None:
    alice = deployment.ids["alice:token"]
    query = f"query($id: ID!) {{ post(id: $id) {{ {POST_FIELDS} }} }}"
    read = same_answer(deployment, query, alice, {"id": deployment.ids["sunset"]})["post"]
    created = deployment.ids["sunset:created"]
    assert created == {**read, "likeCount": 0}  # bob liked it afterwards
    assert read["likeCount"] == 1 and created["media"][0]["owner"] == {"username": "alice"}


def test_a_refused_write_is_refused_alike_and_stores_nothing(deployment: Deployment) -> None:
    alice = deployment.ids["alice:token"]
    count = "query { viewer { posts(first: 1) { totalCount } } }"
    before = same_answer(deployment, count, alice)
    missing = {"input": {"caption": "ghost", "mediaIds": [encode_id("Media", 999_999)]}}
    refused = [
        post(url, CREATE_POST, missing, alice)
        for url in (deployment.gateway, deployment.url("monolith"))
    ]
    codes = [[error["extensions"]["code"] for error in answer["errors"]] for answer in refused]
    assert codes[0] == codes[1] and codes[0][0] in ("NOT_FOUND", "BAD_USER_INPUT"), refused
    assert [answer["data"] for answer in refused] == [None, None]
    assert same_answer(deployment, count, alice) == before


NODES = """
query($post: ID!, $story: ID!, $user: ID!) {
  post: node(id: $post) { __typename id ... on Post { caption author { username } } }
  story: node(id: $story) { __typename id ... on Story { caption media { mimeType } } }
  user: node(id: $user) { __typename id ... on User { username avatar { width } } }
}
"""


def test_node_reaches_types_of_every_subgraph(deployment: Deployment) -> None:
    ids = deployment.ids
    variables = {"post": ids["sunset"], "story": ids["lights"], "user": ids["alice"]}
    found = same_answer(deployment, NODES, ids["carol:token"], variables)
    assert found["post"]["author"] == {"username": "alice"}
    assert found["story"]["media"] == {"mimeType": "image/png"}
    assert found["user"]["avatar"] == {"width": 64}


def test_missing_and_hidden_objects_are_null_with_the_same_codes(
    deployment: Deployment,
) -> None:
    query = """query($post: ID!, $story: ID!) {
      post(id: $post) { id author { username } }
      story(id: $story) { id }
      nobody: user(username: "nobody") { id }
    }"""
    variables = {"post": encode_id("Post", 999_999), "story": encode_id("Story", 999_999)}
    token = deployment.ids["carol:token"]
    from_monolith = post(deployment.url("monolith"), query, variables, token)
    through_gateway = post(deployment.gateway, query, variables, token)
    assert from_monolith["data"] == {"post": None, "story": None, "nobody": None}
    assert through_gateway["data"] == from_monolith["data"]

    def codes(answer: dict[str, Any]) -> list[tuple[str, str]]:
        return sorted((e["path"][0], e["extensions"]["code"]) for e in answer["errors"])

    assert codes(through_gateway) == codes(from_monolith)
    assert {code for _, code in codes(from_monolith)} == {"NOT_FOUND"}
