"""Notifications made from domain events, read through the API: every type, grouping
and its 12-hour window, summaries, withdrawal, self actions and blocks."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from datasources.events.model import Event, NewEvent
from resolvers.ids import split_id
from resolvers.stories.sweeper import sweep_once
from tests.conftest import Account, GraphQLClient, create_users
from tests.notifications_support import (
    EventClock,
    event_clock,
    inbox,
    settled,
    summaries,
)
from tests.posts_helpers import (
    DELETE,
    DELETE_COMMENT,
    SHARE,
    add_comment,
    create_post,
    events,
    mark,
)
from tests.stories_support import (
    Clock,
    clock,
    create_story,
    placed,
    respond,
)
from tests.test_takes import CREATE_TEMPLATE, START_TREND, create_take

__all__ = ["clock", "event_clock"]  # fixtures

LIKE, UNLIKE = mark("likePost"), mark("unlikePost")
LIKE_COMMENT = mark("likeComment")
UNLIKE_COMMENT = mark("unlikeComment")
LIKE_TAKE = "mutation($id: ID!) { likeTake(takeId: $id) { likeCount } }"
UNLIKE_TAKE = "mutation($id: ID!) { unlikeTake(takeId: $id) { likeCount } }"
RELATION = "{ following }"
FOLLOW = f"mutation($id: ID!) {{ follow(userId: $id) {RELATION} }}"
UNFOLLOW = f"mutation($id: ID!) {{ unfollow(userId: $id) {RELATION} }}"
ANSWER_FOLLOW = (
    f"mutation($id: ID!, $ok: Boolean!) {{ respondToFollowRequest(userId: $id, accept: $ok) "
    f"{RELATION} }}"
)
FRIEND = f"mutation($id: ID!) {{ sendFriendRequest(userId: $id) {RELATION} }}"
ANSWER_FRIEND = (
    f"mutation($id: ID!, $ok: Boolean!) {{ respondToFriendRequest(userId: $id, accept: $ok) "
    f"{RELATION} }}"
)
BLOCK = f"mutation($id: ID!) {{ block(userId: $id) {RELATION} }}"
UNBLOCK = f"mutation($id: ID!) {{ unblock(userId: $id) {RELATION} }}"
PRIVATE = "mutation { updateProfile(input: {isPrivate: true}) { isPrivate } }"
REPLY_STORY = "mutation($id: ID!, $b: String!) { replyToStory(storyId: $id, body: $b) { id } }"


async def run(gql: GraphQLClient, query: str, actor: Account, **variables: Any) -> Any:
    return (await gql(query, variables, token=actor.token, platform=actor.platform)).ok()


def pk(node: Account | dict[str, Any]) -> int:
    parts = split_id(node.id if isinstance(node, Account) else node["id"])
    assert parts is not None
    return int(parts[1])


def kinds(nodes: list[dict[str, Any]]) -> list[str]:
    return [node["type"] for node in nodes]


def by_type(nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {node["type"]: node for node in nodes}


async def test_likes_group_read_naturally_and_unlikes_withdraw(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, cyd, dan, eve = await create_users(app, ["ada", "bob", "cyd", "dan", "eve"])
    post = await create_post(gql, ada)

    await run(gql, LIKE, ada, id=post["id"])  # her own like: nothing
    assert await inbox(app, gql, ada) == []

    await run(gql, LIKE, bob, id=post["id"])
    (only,) = await inbox(app, gql, ada)
    assert only["type"] == "POST_LIKE" and only["summary"] == "bob liked your post"
    assert only["subject"] == {"__typename": "Post", "id": post["id"]}
    assert (only["actorCount"], only["isRead"], only["actors"]) == (1, False, [{"username": "bob"}])

    await run(gql, LIKE, cyd, id=post["id"])
    assert summaries(await inbox(app, gql, ada)) == ["cyd and bob liked your post"]
    await run(gql, LIKE, dan, id=post["id"])
    assert summaries(await inbox(app, gql, ada)) == ["dan and 2 others liked your post"]
    await run(gql, LIKE, eve, id=post["id"])
    (group,) = await inbox(app, gql, ada)
    assert group["summary"] == "eve and 3 others liked your post"
    assert group["actorCount"] == 4
    assert [a["username"] for a in group["actors"]] == ["eve", "dan", "cyd"]  # latest first

    await run(gql, UNLIKE, eve, id=post["id"])
    await run(gql, UNLIKE, dan, id=post["id"])
    (group,) = await inbox(app, gql, ada)
    assert group["summary"] == "cyd and bob liked your post" and group["actorCount"] == 2
    await run(gql, UNLIKE, cyd, id=post["id"])
    await run(gql, UNLIKE, bob, id=post["id"])
    assert await inbox(app, gql, ada) == []  # the last actor gone: the group is gone


async def test_every_type_is_made_from_its_event(
    app: Any, gql: GraphQLClient, clock: Clock
) -> None:
    ada, bob, cyd = await create_users(app, ["ada", "bob", "cyd"])
    # users: follow, friend request and acceptance, follow request and acceptance
    await run(gql, FOLLOW, bob, id=ada.id)
    await run(gql, FRIEND, bob, id=ada.id)
    assert kinds(await inbox(app, gql, ada)) == ["FRIEND_REQUEST", "FOLLOW"]
    await run(gql, ANSWER_FRIEND, ada, id=bob.id, ok=True)
    await run(gql, PRIVATE, cyd)
    await run(gql, FOLLOW, ada, id=cyd.id)
    requested = by_type(await inbox(app, gql, cyd))["FOLLOW_REQUEST"]
    assert requested["summary"] == "ada asked to follow you"
    assert requested["subject"] == {"__typename": "User", "id": ada.id}
    await run(gql, ANSWER_FOLLOW, cyd, id=ada.id, ok=True)
    assert kinds(await inbox(app, gql, cyd)) == []  # the answered request went

    # posts and comments
    post = await create_post(gql, ada, caption="hello @bob")
    await run(gql, LIKE, bob, id=post["id"])
    comment = await add_comment(gql, bob, "nice", postId=post["id"])
    reply = await add_comment(gql, ada, "thanks", postId=post["id"], parentId=comment["id"])
    await run(gql, LIKE_COMMENT, ada, id=comment["id"])
    await run(gql, SHARE, bob, input={"postId": post["id"]})

    # takes, trends, templates
    take = await create_take(app, gql, ada)
    await run(gql, LIKE_TAKE, bob, id=take["id"])
    take_comment = await add_comment(gql, bob, "wow", takeId=take["id"])
    trend = await run(
        gql, START_TREND, ada, input={"takeId": take["id"], "name": "Wave", "hashtag": "wave"}
    )
    trend_id = trend["startTrend"]["id"]
    await create_take(app, gql, bob, trendId=trend_id)
    template = await run(
        gql, CREATE_TEMPLATE, ada, input={"name": "Beat", "slots": [{"durationMs": 3000}]}
    )
    template_id = template["createTakeTemplate"]["id"]
    await create_take(app, gql, bob, templateId=template_id)

    # stories
    ends = clock.now + timedelta(hours=2)
    story = await create_story(
        app,
        gql,
        ada,
        stickers=[
            placed("mention", userId=bob.id),
            placed("poll", question="Tea?", options=["tea", "coffee"]),
            placed("countdown", title="Launch", endsAt=ends.isoformat()),
        ],
    )
    await run(gql, REPLY_STORY, bob, id=story["id"], b="love it")
    (await respond(gql, bob, story, 1, pollOption=0)).ok()
    (await respond(gql, bob, story, 2, countdownSubscribe=True)).ok()
    clock.move(hours=3)
    await sweep_once(app.state.runtime.stores)

    mine = by_type(await inbox(app, gql, ada, first=50))
    assert {t: n["summary"] for t, n in mine.items()} == {
        "FOLLOW": "bob started following you",
        "FOLLOW_ACCEPTED": "cyd accepted your follow request",
        "POST_LIKE": "bob liked your post",
        "POST_COMMENT": "bob commented on your post",
        "POST_SHARE": "bob shared your post",
        "TAKE_LIKE": "bob liked your take",
        "TAKE_COMMENT": "bob commented on your take",
        "TREND_JOINED": "bob joined your trend",
        "TEMPLATE_USED": "bob used your template",
        "STORY_REPLY": "bob replied to your story",
        "STICKER_RESPONSE": "bob responded to your story",
    }
    subjects = {t: n["subject"] for t, n in mine.items()}
    assert subjects["FOLLOW"] == {"__typename": "User", "id": ada.id}
    on_post = {"__typename": "Post", "id": post["id"]}
    assert subjects["POST_LIKE"] == subjects["POST_SHARE"] == on_post
    assert subjects["POST_COMMENT"] == {"__typename": "Comment", "id": comment["id"]}
    assert subjects["TAKE_LIKE"] == {"__typename": "Take", "id": take["id"]}
    assert subjects["TAKE_COMMENT"] == {"__typename": "Comment", "id": take_comment["id"]}
    assert subjects["TREND_JOINED"] == {"__typename": "TakeTrend", "id": trend_id}
    assert subjects["TEMPLATE_USED"] == {"__typename": "TakeTemplate", "id": template_id}
    assert (
        subjects["STORY_REPLY"]
        == subjects["STICKER_RESPONSE"]
        == {
            "__typename": "Story",
            "id": story["id"],
        }
    )
    assert mine["STICKER_RESPONSE"]["actorCount"] == 1  # a poll vote and a subscription

    theirs = by_type(await inbox(app, gql, bob, first=50))
    assert {t: n["summary"] for t, n in theirs.items()} == {
        "FRIEND_ACCEPTED": "ada accepted your friend request",
        "MENTION": "ada mentioned you in a post",
        "COMMENT_REPLY": "ada replied to your comment",
        "COMMENT_LIKE": "ada liked your comment",
        "STORY_MENTION": "ada mentioned you in their story",
        "COUNTDOWN_ENDED": "ada's countdown ended",
    }
    assert theirs["COMMENT_REPLY"]["subject"] == {"__typename": "Comment", "id": reply["id"]}
    assert theirs["COUNTDOWN_ENDED"]["subject"] == {"__typename": "Story", "id": story["id"]}
    assert "FRIEND_REQUEST" not in mine  # answered: withdrawn


async def test_follow_accepted_and_follows_group_by_type(app: Any, gql: GraphQLClient) -> None:
    ada, bob, cyd, dan = await create_users(app, ["ada", "bob", "cyd", "dan"])
    await run(gql, PRIVATE, ada)
    await run(gql, FOLLOW, bob, id=ada.id)
    await run(gql, ANSWER_FOLLOW, ada, id=bob.id, ok=True)
    (accepted,) = await inbox(app, gql, bob)
    assert accepted["summary"] == "ada accepted your follow request"
    assert accepted["subject"] == {"__typename": "User", "id": ada.id}

    await run(gql, FOLLOW, dan, id=bob.id)
    await run(gql, FOLLOW, cyd, id=bob.id)  # follows group by type alone: one entry
    (follows,) = await inbox(app, gql, bob, types=["FOLLOW"])
    assert follows["summary"] == "cyd and dan started following you"
    assert follows["subject"] == {"__typename": "User", "id": bob.id}
    await run(gql, UNFOLLOW, cyd, id=bob.id)
    assert summaries(await inbox(app, gql, bob, types=["FOLLOW"])) == ["dan started following you"]

    await run(gql, FOLLOW, dan, id=ada.id)  # ada is private: a request
    assert kinds(await inbox(app, gql, ada)) == ["FOLLOW_REQUEST"]
    await run(gql, UNFOLLOW, dan, id=ada.id)  # withdrawn before ada answered
    assert await inbox(app, gql, ada) == []


async def test_grouping_window_spans_at_most_12_hours(
    app: Any, gql: GraphQLClient, event_clock: EventClock
) -> None:
    ada, bob, cyd, dan = await create_users(app, ["ada", "bob", "cyd", "dan"])
    post = await create_post(gql, ada)
    await run(gql, LIKE, bob, id=post["id"])
    event_clock.move(hours=11)
    await run(gql, LIKE, cyd, id=post["id"])  # 11 h after the first: same group
    assert summaries(await inbox(app, gql, ada)) == ["cyd and bob liked your post"]

    event_clock.move(hours=2)  # 13 h after the group's first like: a new group
    await run(gql, LIKE, dan, id=post["id"])
    nodes = await inbox(app, gql, ada)
    assert summaries(nodes) == ["dan liked your post", "cyd and bob liked your post"]
    assert nodes[0]["latestAt"] > nodes[1]["latestAt"]


async def test_a_new_actor_brings_the_group_to_the_top_unread(app: Any, gql: GraphQLClient) -> None:
    ada, bob, cyd = await create_users(app, ["ada", "bob", "cyd"])
    first = await create_post(gql, ada, caption="first")
    second = await create_post(gql, ada, caption="second")
    await run(gql, LIKE, bob, id=first["id"])
    await run(gql, LIKE, bob, id=second["id"])
    await settled(app)
    assert (await gql("mutation { markNotificationsRead }", token=ada.token)).ok() == {
        "markNotificationsRead": 2
    }
    await run(gql, LIKE, cyd, id=first["id"])
    nodes = await inbox(app, gql, ada)
    assert [n["subject"]["id"] for n in nodes] == [first["id"], second["id"]]
    assert [n["isRead"] for n in nodes] == [False, True]


async def test_comments_replies_and_mentions_stay_single_and_deletions_withdraw(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, cyd = await create_users(app, ["ada", "bob", "cyd"])
    post = await create_post(gql, ada)
    first = await add_comment(gql, bob, "one", postId=post["id"])
    await add_comment(gql, cyd, "two", postId=post["id"])
    reply = await add_comment(gql, cyd, "re", postId=post["id"], parentId=first["id"])
    await run(gql, LIKE_COMMENT, cyd, id=first["id"])
    comments = await inbox(app, gql, ada, types=["POST_COMMENT"])
    # cyd's reply to bob notifies ada of a comment too (on her post), each one single
    assert summaries(comments) == ["cyd commented on your post"] * 2 + [
        "bob commented on your post"
    ]
    assert kinds(await inbox(app, gql, bob)) == ["COMMENT_LIKE", "COMMENT_REPLY"]

    await run(gql, UNLIKE_COMMENT, cyd, id=first["id"])
    assert kinds(await inbox(app, gql, bob)) == ["COMMENT_REPLY"]
    await run(gql, DELETE_COMMENT, bob, id=first["id"])  # and its reply with it
    assert await inbox(app, gql, bob) == []
    remaining = await inbox(app, gql, ada)
    assert summaries(remaining) == ["cyd commented on your post"]
    assert reply["id"] not in [n["subject"]["id"] for n in remaining]

    await run(gql, LIKE, bob, id=post["id"])
    await run(gql, DELETE, ada, id=post["id"])
    assert await inbox(app, gql, ada) == []


async def test_take_unlike_and_deletion_withdraw(app: Any, gql: GraphQLClient) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    take = await create_take(app, gql, ada)
    await run(gql, LIKE_TAKE, bob, id=take["id"])
    assert kinds(await inbox(app, gql, ada)) == ["TAKE_LIKE"]
    await run(gql, UNLIKE_TAKE, bob, id=take["id"])
    assert await inbox(app, gql, ada) == []
    await run(gql, LIKE_TAKE, bob, id=take["id"])
    await add_comment(gql, bob, "wow", takeId=take["id"])
    assert kinds(await inbox(app, gql, ada)) == ["TAKE_COMMENT", "TAKE_LIKE"]
    await run(gql, "mutation($id: ID!) { deleteTake(id: $id) }", ada, id=take["id"])
    assert await inbox(app, gql, ada) == []


async def test_nothing_from_or_to_a_blocked_user(app: Any, gql: GraphQLClient) -> None:
    ada, bob, cyd = await create_users(app, ["ada", "bob", "cyd"])
    post = await create_post(gql, ada)
    await run(gql, LIKE, bob, id=post["id"])
    await run(gql, LIKE, cyd, id=post["id"])
    assert summaries(await inbox(app, gql, ada)) == ["cyd and bob liked your post"]

    await run(gql, BLOCK, ada, id=bob.id)  # bob's activity leaves ada's notifications
    assert summaries(await inbox(app, gql, ada)) == ["cyd liked your post"]

    # Events still in flight when the block happened reach the consumer afterwards:
    # neither way makes a notification.
    consumer = next(
        c for c in app.state.runtime.stores.events.consumers if c.name == "notifications"
    )
    bobs = await create_post(gql, bob)
    late = [
        NewEvent("post.liked", "socialink", pk(bob), "post", pk(post), {"author_id": pk(ada)}),
        NewEvent("post.liked", "socialink", pk(ada), "post", pk(bobs), {"author_id": pk(bob)}),
    ]
    for new in late:
        await consumer.handle(Event.stamp(new))
    assert summaries(await inbox(app, gql, ada)) == ["cyd liked your post"]
    assert await inbox(app, gql, bob) == []

    await run(gql, UNBLOCK, ada, id=bob.id)
    await run(gql, UNLIKE, bob, id=post["id"])  # his like outlived the block
    await run(gql, LIKE, bob, id=post["id"])
    assert summaries(await inbox(app, gql, ada)) == ["bob and cyd liked your post"]


async def test_a_subject_the_viewer_can_no_longer_see_is_null(app: Any, gql: GraphQLClient) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    post = await create_post(gql, bob, caption="@ada look")
    (mention,) = await inbox(app, gql, ada)
    assert mention["subject"] == {"__typename": "Post", "id": post["id"]}
    private = "mutation { updateProfile(input: {isPrivate: true}) { isPrivate } }"
    await run(gql, private, bob)  # ada does not follow bob: the post is hidden now
    (mention,) = await inbox(app, gql, ada)
    assert mention["type"] == "MENTION" and mention["subject"] is None


async def test_a_redelivered_event_changes_nothing(app: Any, gql: GraphQLClient) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    post = await create_post(gql, ada)
    await run(gql, LIKE, bob, id=post["id"])
    before = await inbox(app, gql, ada)
    (liked,) = await events(app, "post.liked")
    consumer = next(
        c for c in app.state.runtime.stores.events.consumers if c.name == "notifications"
    )
    await consumer.handle(Event.from_json(json.dumps(liked)))  # the bus delivers it again
    assert await inbox(app, gql, ada) == before
    assert before[0]["actorCount"] == 1
