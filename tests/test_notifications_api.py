"""The notifications API: the list (order, pages, type filter, statements), read state,
preferences and push devices."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from datasources.notifications.tables import (
    NotificationSettingsRow,
    NotificationTypePreferenceRow,
    PushDeviceRow,
)
from tests.conftest import Account, GraphQLClient, create_users
from tests.notifications_support import (
    MARK_READ,
    NOTIFICATIONS,
    UNREAD,
    inbox,
    page,
    settled,
    summaries,
    unread,
)
from tests.posts_helpers import add_comment, create_post, mark
from tests.test_users_sql_count import counted

LIKE = mark("likePost")
FOLLOW = "mutation($id: ID!) { follow(userId: $id) { following } }"
PREFERENCES = """
query { notificationPreferences {
  types { type channels } quietHours { start end timezone } pausedUntil emailDigest
} }
"""
UPDATE = """
mutation($input: UpdateNotificationPreferencesInput!) {
  updateNotificationPreferences(input: $input) {
    types { type channels } quietHours { start end timezone } pausedUntil emailDigest
  }
}
"""
REGISTER = """
mutation($input: RegisterPushDeviceInput!) {
  registerPushDevice(input: $input) { id provider name createdAt lastUsedAt }
}
"""
DEVICES = "query { pushDevices { id provider name } }"
UNREGISTER = "mutation($id: ID!) { unregisterPushDevice(id: $id) }"


async def run(gql: GraphQLClient, query: str, actor: Account, **variables: Any) -> Any:
    return (await gql(query, variables, token=actor.token, platform=actor.platform)).ok()


async def likes_on_posts(
    app: Any, gql: GraphQLClient, owner: Account, likers: list[Account], posts: int
) -> list[dict[str, Any]]:
    """`posts` posts of `owner`, each liked by every liker, in order."""
    made = []
    for i in range(posts):
        post = await create_post(gql, owner, caption=f"post {i}")
        for liker in likers:
            await run(gql, LIKE, liker, id=post["id"])
        made.append(post)
    await settled(app)
    return made


async def test_latest_activity_first_paginated_and_filtered(app: Any, gql: GraphQLClient) -> None:
    ada, bob, cyd = await create_users(app, ["ada", "bob", "cyd"])
    posts = await likes_on_posts(app, gql, ada, [bob], 5)
    await run(gql, FOLLOW, cyd, id=ada.id)
    await add_comment(gql, cyd, "hi", postId=posts[0]["id"])
    await settled(app)

    first = await page(gql, ada, first=3)
    assert first["totalCount"] == 7
    assert [e["node"]["type"] for e in first["edges"]] == ["POST_COMMENT", "FOLLOW", "POST_LIKE"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["hasPreviousPage"] is False
    rest = await page(gql, ada, first=10, after=first["pageInfo"]["endCursor"])
    assert rest["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "endCursor": rest["edges"][-1]["cursor"],
    }
    liked = [e["node"]["subject"]["id"] for e in first["edges"][2:] + rest["edges"]]
    assert liked == [p["id"] for p in reversed(posts)]  # newest like first, no repeat
    times = [e["node"]["latestAt"] for e in first["edges"] + rest["edges"]]
    assert times == sorted(times, reverse=True)

    only = await page(gql, ada, types=["FOLLOW", "POST_COMMENT"])
    assert only["totalCount"] == 2
    assert [e["node"]["type"] for e in only["edges"]] == ["POST_COMMENT", "FOLLOW"]

    bad = await gql(NOTIFICATIONS, {"after": "nonsense"}, token=ada.token)
    assert bad.codes == ["BAD_USER_INPUT"]
    assert (await gql(NOTIFICATIONS, {"first": 1000}, token=ada.token)).codes == ["BAD_USER_INPUT"]
    assert (await gql(NOTIFICATIONS)).codes == ["UNAUTHENTICATED"]
    assert await inbox(app, gql, bob) == []  # ada's notifications are hers only


async def test_mark_read_up_to_a_time_and_the_unread_count(app: Any, gql: GraphQLClient) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    await likes_on_posts(app, gql, ada, [bob], 3)
    assert await unread(app, gql, ada) == 3
    nodes = await inbox(app, gql, ada)
    middle = nodes[1]["latestAt"]  # the second newest: it and the oldest are marked

    marked = await run(gql, MARK_READ, ada, upTo=middle)
    assert marked == {"markNotificationsRead": 2}
    assert [n["isRead"] for n in await inbox(app, gql, ada)] == [False, True, True]
    assert await unread(app, gql, ada) == 1
    assert await run(gql, MARK_READ, ada, upTo=middle) == {"markNotificationsRead": 0}
    assert await run(gql, "mutation { markNotificationsRead }", ada) == {"markNotificationsRead": 1}
    assert (await gql(UNREAD, token=ada.token)).ok() == {"unreadNotificationCount": 0}
    assert (await gql(UNREAD)).codes == ["UNAUTHENTICATED"]


# One statement each: the page, its totalCount, the actors of every group (one
# windowed statement), the posts that are the subjects (joined with their authors),
# the users who acted. Nothing per group or per actor. (The posts are the viewer's
# own, so no relationship is read for them.)
LIST_STATEMENTS = 5


async def test_the_list_costs_the_same_statements_for_3_and_12_groups(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    small, large, *likers = await create_users(app, ["small", "large", "l1", "l2", "l3", "l4"])
    await likes_on_posts(app, gql, small, likers, 3)
    await likes_on_posts(app, gql, large, likers, 12)

    counts = []
    for owner, size in ((small, 3), (large, 12)):
        count, data = await counted(
            gql, sql_counter, NOTIFICATIONS, variables={"first": 20}, token=owner.token
        )
        nodes = [e["node"] for e in data["notifications"]["edges"]]
        assert len(nodes) == size
        assert summaries(nodes) == ["l4 and 3 others liked your post"] * size
        assert all(n["subject"]["__typename"] == "Post" for n in nodes)
        counts.append(count)
    assert counts == [LIST_STATEMENTS, LIST_STATEMENTS], "\n".join(s[:90] for s in sql_counter)


# ── preferences ──────────────────────────────────────────────────────────


async def stored_preferences(app: Any) -> tuple[int, int]:
    async with app.state.runtime.stores.db.session() as session:
        settings = await session.scalar(select(func.count()).select_from(NotificationSettingsRow))
        types = await session.scalar(
            select(func.count()).select_from(NotificationTypePreferenceRow)
        )
    return int(settings or 0), int(types or 0)


async def test_preferences_have_defaults_and_are_updated(app: Any, gql: GraphQLClient) -> None:
    (ada,) = await create_users(app, ["ada"])
    shown = (await run(gql, PREFERENCES, ada))["notificationPreferences"]
    channels = {t["type"]: t["channels"] for t in shown["types"]}
    assert len(channels) == 19
    assert channels["POST_LIKE"] == ["IN_APP", "PUSH"]
    assert channels["FOLLOW_REQUEST"] == ["IN_APP", "PUSH", "EMAIL"]
    assert shown["quietHours"] is None and shown["pausedUntil"] is None
    assert shown["emailDigest"] is False

    changed = await run(
        gql,
        UPDATE,
        ada,
        input={
            "types": [{"type": "POST_LIKE", "channels": ["EMAIL", "IN_APP", "EMAIL"]}],
            "quietHours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"},
            "pausedUntil": "2030-01-01T08:00:00+01:00",
            "emailDigest": True,
        },
    )
    after = changed["updateNotificationPreferences"]
    assert {t["type"]: t["channels"] for t in after["types"]}["POST_LIKE"] == ["IN_APP", "EMAIL"]
    assert after["quietHours"] == {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"}
    assert after["pausedUntil"] == "2030-01-01T07:00:00+00:00"
    assert after["emailDigest"] is True
    assert (await run(gql, PREFERENCES, ada))["notificationPreferences"] == after

    cleared = await run(gql, UPDATE, ada, input={"clearQuietHours": True, "pausedUntil": None})
    result = cleared["updateNotificationPreferences"]
    assert result["quietHours"] is None and result["pausedUntil"] is None
    assert result["emailDigest"] is True  # left out: unchanged


async def test_bad_preferences_are_refused_and_store_nothing(app: Any, gql: GraphQLClient) -> None:
    (ada,) = await create_users(app, ["ada"])
    quiet = {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"}
    bad = {
        "unknown zone": {"quietHours": {**quiet, "timezone": "Mars/Olympus_Mons"}},
        "a path as zone": {"quietHours": {**quiet, "timezone": "../../etc/passwd"}},
        "25 o'clock": {"quietHours": {**quiet, "start": "25:00"}},
        "not a time": {"quietHours": {**quiet, "end": "7pm"}},
        "empty window": {"quietHours": {**quiet, "end": "22:00"}},
        "set and clear": {"quietHours": quiet, "clearQuietHours": True},
        "type twice": {
            "types": [
                {"type": "FOLLOW", "channels": ["PUSH"]},
                {"type": "FOLLOW", "channels": []},
            ],
            "emailDigest": True,
        },
    }
    for what, change in bad.items():
        result = await gql(UPDATE, {"input": change}, token=ada.token)
        assert result.codes == ["BAD_USER_INPUT"], what
    unknown_type = await gql(
        UPDATE, {"input": {"types": [{"type": "NOPE", "channels": []}]}}, token=ada.token
    )
    assert unknown_type.errors  # not a NotificationType: refused by validation
    assert await stored_preferences(app) == (0, 0)
    assert (await gql(PREFERENCES)).codes == ["UNAUTHENTICATED"]


async def test_a_type_without_in_app_makes_no_notification(app: Any, gql: GraphQLClient) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    await run(gql, UPDATE, ada, input={"types": [{"type": "POST_LIKE", "channels": ["PUSH"]}]})
    post = await create_post(gql, ada)
    await run(gql, LIKE, bob, id=post["id"])
    await run(gql, FOLLOW, bob, id=ada.id)
    assert [n["type"] for n in await inbox(app, gql, ada)] == ["FOLLOW"]


# ── push devices ─────────────────────────────────────────────────────────


async def test_push_devices_belong_to_their_owner(app: Any, gql: GraphQLClient) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    apns = {"provider": "APNS", "token": "a" * 64, "name": "iPhone"}
    phone = (await run(gql, REGISTER, ada, input=apns))["registerPushDevice"]
    assert phone["provider"] == "APNS" and phone["name"] == "iPhone"
    assert phone["createdAt"] and phone["lastUsedAt"] is None
    tablet = (await run(gql, REGISTER, ada, input={"provider": "FCM", "token": "fcm-token-1"}))[
        "registerPushDevice"
    ]
    assert tablet["name"] is None
    assert [d["id"] for d in (await run(gql, DEVICES, ada))["pushDevices"]] == [
        phone["id"],
        tablet["id"],
    ]
    assert (await run(gql, DEVICES, bob))["pushDevices"] == []

    # bob cannot remove ada's device; the same token registered by bob moves to him
    assert await run(gql, UNREGISTER, bob, id=tablet["id"]) == {"unregisterPushDevice": False}
    moved = (await run(gql, REGISTER, bob, input={"provider": "FCM", "token": "fcm-token-1"}))[
        "registerPushDevice"
    ]
    assert [d["id"] for d in (await run(gql, DEVICES, ada))["pushDevices"]] == [phone["id"]]
    assert [d["id"] for d in (await run(gql, DEVICES, bob))["pushDevices"]] == [moved["id"]]

    assert await run(gql, UNREGISTER, ada, id=phone["id"]) == {"unregisterPushDevice": True}
    assert await run(gql, UNREGISTER, ada, id=phone["id"]) == {"unregisterPushDevice": False}
    assert (await run(gql, DEVICES, ada))["pushDevices"] == []

    for bad in ({"provider": "FCM", "token": "  "}, {"provider": "FCM", "token": "x" * 5000}):
        assert (await gql(REGISTER, {"input": bad}, token=ada.token)).codes == ["BAD_USER_INPUT"]
    not_an_id = await gql(UNREGISTER, {"id": "nope"}, token=ada.token)
    assert not_an_id.codes == ["BAD_USER_INPUT"]
    assert (await gql(DEVICES)).codes == ["UNAUTHENTICATED"]
    async with app.state.runtime.stores.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(PushDeviceRow)) == 1
