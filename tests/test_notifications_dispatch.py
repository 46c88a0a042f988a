"""The dispatcher end to end: GraphQL actions → the consumer → due deliveries → a
loopback FCM (token endpoint and messages:send, tests/test_push_delivery.py) and a
real SMTP server (aiosmtpd, tests/test_email_delivery.py), configured through the
server's settings as an operator would. Rounds run when the test says, at the
time it says (`run_once(now)`); presence comes from real websockets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import delete, insert, select

from datasources.events.model import Event
from datasources.events.tables import ConsumedEventRow
from datasources.notifications.consumer import NotificationConsumer
from datasources.notifications.dispatch import DispatchStats, NotificationDispatcher
from datasources.notifications.tables import (
    NotificationActorRow,
    NotificationDeliveryRow,
    NotificationGroupRow,
    NotificationSettingsRow,
    NotificationTypePreferenceRow,
)
from datasources.sql import Database
from datasources.users.tables import BlockRow, UserRow
from resolvers.ids import encode_id
from server.settings import Settings
from tests.conftest import Account, GraphQLClient, create_users
from tests.notifications_support import EventClock, event_clock, settled
from tests.posts_helpers import create_post, mark
from tests.realtime_support import live_server, open_socket
from tests.test_email_delivery import Inbox, parts, smtp
from tests.test_notifications_delivery import TOKYO_NIGHTS, UPDATE, groups
from tests.test_push_delivery import (
    CLIENT_EMAIL,
    GOOGLE_KEY_ID,
    PROJECT,
    FakeFcm,
    fcm,
    fcm_error,
    google_key,
    pem,
)

__all__ = ["event_clock", "fcm", "google_key", "smtp"]  # fixtures

LIKE = mark("likePost")
FOLLOW = "mutation($id: ID!) { follow(userId: $id) { following } }"
REGISTER = """
mutation($input: RegisterPushDeviceInput!) { registerPushDevice(input: $input) { id } }
"""
DEVICES = "query { pushDevices { id provider lastUsedAt } }"
FROM = "Socialink <notifications@socialink.example>"


@pytest.fixture
def settings(
    settings: Settings,
    tmp_path: Path,
    fcm: FakeFcm,
    google_key: rsa.RSAPrivateKey,
    smtp: tuple[Inbox, int],
) -> Settings:
    """FCM and SMTP configured (APNs not: its devices are off); no rounds on a timer."""
    key_file = tmp_path / "service-account.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": GOOGLE_KEY_ID,
                "private_key": pem(google_key),
                "client_email": CLIENT_EMAIL,
                "token_uri": fcm.token_uri,
            }
        )
    )
    return settings.model_copy(
        update={
            "fcm_credentials_file": key_file,
            "fcm_base_url": fcm.base_url,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp[1],
            "smtp_from": FROM,
            "smtp_starttls": False,
            "notification_dispatch_seconds": 0,
        }
    )


async def run(gql: GraphQLClient, query: str, actor: Account, **variables: Any) -> Any:
    return (await gql(query, variables, token=actor.token, platform=actor.platform)).ok()


def dispatcher(app: Any) -> NotificationDispatcher:
    found = app.state.runtime.dispatcher
    assert isinstance(found, NotificationDispatcher)
    return found


async def test_a_like_pushes_to_each_device_and_a_dead_token_is_removed(
    app: Any, gql: GraphQLClient, fcm: FakeFcm
) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    phone = await run(gql, REGISTER, ada, input={"provider": "FCM", "token": "fcm-phone"})
    await run(gql, REGISTER, ada, input={"provider": "FCM", "token": "fcm-old-tablet"})
    await run(gql, REGISTER, ada, input={"provider": "APNS", "token": "a" * 64})
    post = await create_post(gql, ada)
    await run(gql, LIKE, bob, id=post["id"])
    await settled(app)
    (group,) = (await groups(app, gql, ada)).values()
    # the phone takes it; the tablet's token is dead (FCM: 404 UNREGISTERED)
    fcm.replies = [
        (200, {}, {"name": f"projects/{PROJECT}/messages/1"}),
        (404, {}, fcm_error(404, "NOT_FOUND", "UNREGISTERED")),
    ]

    stats = await dispatcher(app).run_once(datetime.now(UTC) + timedelta(seconds=1))

    assert stats == DispatchStats(pushed=1, devices_removed=1, off=1)  # APNs: no credentials
    collapse = f"notification:{group}"
    first, second = (send["body"]["message"] for send in fcm.sends)
    assert (first["token"], second["token"]) == ("fcm-phone", "fcm-old-tablet")
    assert first["notification"] == {"title": "Socialink", "body": "bob liked your post"}
    assert first["data"] == {
        "notificationId": encode_id("NotificationGroup", group),
        "type": "POST_LIKE",
    }
    assert first["android"] == {
        "collapse_key": collapse,
        "notification": {"tag": collapse, "notification_count": 1},  # unread count
    }
    assert first["apns"]["headers"] == {"apns-collapse-id": collapse}
    assert first["apns"]["payload"]["aps"]["badge"] == 1
    assert fcm.sends[0]["path"] == f"/v1/projects/{PROJECT}/messages:send"

    devices = (await run(gql, DEVICES, ada))["pushDevices"]
    assert [(d["id"], d["provider"]) for d in devices] == [
        (phone["registerPushDevice"]["id"], "FCM"),
        (devices[1]["id"], "APNS"),  # kept: APNs is off, not refused
    ]
    assert devices[0]["lastUsedAt"] is not None and devices[1]["lastUsedAt"] is None
    # taken once: a second round sends nothing
    assert await dispatcher(app).run_once(datetime.now(UTC) + timedelta(minutes=1)) == (
        DispatchStats()
    )
    assert len(fcm.sends) == 2


async def test_throttling_is_retried_with_backoff_then_put_back(
    app: Any, gql: GraphQLClient, fcm: FakeFcm
) -> None:
    ada, bob, cyd = await create_users(app, ["ada", "bob", "cyd"])
    await run(gql, REGISTER, ada, input={"provider": "FCM", "token": "fcm-phone"})
    post = await create_post(gql, ada)
    await run(gql, LIKE, bob, id=post["id"])
    await settled(app)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    dispatch = dispatcher(app)
    dispatch.sleep = sleep
    # a 429 without Retry-After: retried in process after a backoff, delivered
    fcm.replies = [(429, {}, fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"))]
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert (await dispatch.run_once(now)).pushed == 1
    assert len(fcm.sends) == 2 and len(slept) == 1 and 0.5 <= slept[0] <= 1.0

    # a 503 asking for two minutes: not slept through, the delivery waits instead
    await run(gql, LIKE, cyd, id=post["id"])
    await settled(app)
    fcm.replies = [(503, {"retry-after": "120"}, fcm_error(503, "UNAVAILABLE"))]
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert await dispatch.run_once(now) == DispatchStats(requeued=1)
    assert len(fcm.sends) == 3 and len(slept) == 1
    assert (await dispatch.run_once(now + timedelta(seconds=119))).pushed == 0
    assert (await dispatch.run_once(now + timedelta(seconds=120))).pushed == 1
    assert fcm.sends[-1]["body"]["message"]["notification"]["body"] == (
        "cyd and bob liked your post"
    )


async def test_quiet_hours_hold_pushes_then_send_one_summary(
    app: Any, gql: GraphQLClient, fcm: FakeFcm, event_clock: EventClock
) -> None:
    ada, bob, cyd, dan = await create_users(app, ["ada", "bob", "cyd", "dan"])
    await run(gql, UPDATE, ada, input={"quietHours": TOKYO_NIGHTS})
    await run(gql, REGISTER, ada, input={"provider": "FCM", "token": "fcm-phone"})
    post = await create_post(gql, ada)
    night = datetime.now(UTC).replace(hour=14, minute=0, second=0, microsecond=0) + timedelta(
        days=1
    )  # 23:00 in Tokyo
    morning = night + timedelta(hours=8)  # 07:00 in Tokyo
    event_clock.now = night
    await run(gql, LIKE, bob, id=post["id"])
    event_clock.move(minutes=30)
    await run(gql, LIKE, cyd, id=post["id"])
    event_clock.move(hours=2)
    await run(gql, FOLLOW, dan, id=ada.id)
    await settled(app)
    ids = await groups(app, gql, ada)

    for hour in (0, 3, 7):  # rounds all night long: nothing goes
        await dispatcher(app).run_once(night + timedelta(hours=hour, minutes=59))
    assert fcm.sends == []

    assert (await dispatcher(app).run_once(morning)).pushed == 1
    (send,) = fcm.sends
    message = send["body"]["message"]
    assert message["notification"] == {
        "title": "Socialink",
        "body": "dan started following you, and 1 more notification",  # latest first
    }
    assert message["data"] == {
        "type": "SUMMARY",
        "notificationIds": ",".join(
            encode_id("NotificationGroup", ids[t]) for t in ("FOLLOW", "POST_LIKE")
        ),
    }
    assert message["apns"]["payload"]["aps"] == {
        "sound": "default",
        "badge": 2,
        "thread-id": "notifications",
    }
    assert (await dispatcher(app).run_once(morning + timedelta(hours=1))).pushed == 0


async def test_email_waits_until_the_user_is_offline_for_15_minutes(
    app: Any, gql: GraphQLClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    ada, bob = await create_users(app, ["ada", "bob"])
    async with live_server(app) as address:
        socket = await open_socket(address, ada.token)
        await create_post(gql, bob, caption="look @ada")  # MENTION: push and email
        await settled(app)
        stats = await dispatcher(app).run_once(datetime.now(UTC) + timedelta(seconds=1))
        assert stats.requeued == 1 and inbox.received == []  # ada is connected
        await socket.close()
    left = datetime.now(UTC)

    assert (await dispatcher(app).run_once(left + timedelta(minutes=14))).emailed == 0
    assert inbox.received == []
    assert (await dispatcher(app).run_once(left + timedelta(minutes=15, seconds=5))).emailed == 1
    (mail,) = inbox.received
    message = mail["message"]
    assert mail["rcpt_tos"] == ["ada@example.com"]
    assert message["From"] == FROM
    assert message["Subject"] == "bob mentioned you in a post"
    text, html = parts(message)
    assert "Hi ada," in text and "- bob mentioned you in a post" in text
    assert "<li" in html and "bob mentioned you in a post" in html
    # sent once
    assert (await dispatcher(app).run_once(left + timedelta(hours=1))).emailed == 0


async def test_a_digest_goes_at_its_hour_even_to_a_connected_user(
    app: Any, gql: GraphQLClient, smtp: tuple[Inbox, int], event_clock: EventClock
) -> None:
    inbox, _ = smtp
    ada, bob, cyd = await create_users(app, ["ada", "bob", "cyd"])
    await run(gql, UPDATE, ada, input={"emailDigest": True})
    day = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=1)
    event_clock.now = day
    await create_post(gql, bob, caption="look @ada")
    await create_post(gql, cyd, caption="hey @ada")
    await settled(app)
    digest_at = day.replace(hour=8) + timedelta(days=1)  # 08:00 UTC (no zone set)
    async with live_server(app) as address:
        socket = await open_socket(address, ada.token)
        assert (await dispatcher(app).run_once(digest_at - timedelta(minutes=1))).emailed == 0
        assert (await dispatcher(app).run_once(digest_at)).emailed == 1
        await socket.close()
    (mail,) = inbox.received
    assert mail["message"]["Subject"] == "2 new notifications on Socialink"
    text, _ = parts(mail["message"])
    assert text.index("cyd mentioned you") < text.index("bob mentioned you")  # latest first


# ── the batched apply path (bench/notifications.py) ─────────────────────────


def like(n: int, kind: str, actor: int, subject: int, at: datetime, **data: Any) -> Event:
    return Event(f"e{n}", kind, "socialink", at, actor, kind.split(".")[0], subject, data)


def mixed_stream() -> list[Event]:
    """Likes of two posts by 1's and 2's readers, over more than a grouping window,
    with what the batched path must treat as the one-by-one path does: a repeated
    actor, unlikes between likes, a self like, a blocked liker, a type turned off,
    a paused recipient, comments (not batched) in the middle, a duplicate event."""
    t = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    events: list[Event] = []

    def add(kind: str, actor: int, subject: int, minutes: float, **data: Any) -> None:
        events.append(
            like(len(events), kind, actor, subject, t + timedelta(minutes=minutes), **data)
        )

    for k, liker in enumerate((3, 4, 5, 6, 1, 7)):  # 1 likes its own post: nothing
        add("post.liked", liker, 100, k, author_id=1)
        add("post.liked", liker, 200, k + 0.5, author_id=2)  # 2 is paused; 7 blocked by 2
    add("post.unliked", 4, 100, 7, author_id=1)
    add("post.liked", 4, 100, 8, author_id=1)  # back, later
    add("story.sticker_responded", 3, 300, 9, author_id=1)
    add("story.sticker_responded", 3, 300, 10, author_id=1)  # the same actor: fresher
    add("comment.created", 5, 400, 11, subject_type="post", subject_id=100, subject_author_id=1)
    add("comment.liked", 6, 400, 12, author_id=5, subject_type="post", subject_id=100)
    add("comment.liked", 3, 400, 13, author_id=5, subject_type="post", subject_id=100)
    add("post.liked", 5, 100, 13 * 60, author_id=1)  # 13 h later: a new group
    add("post.unliked", 5, 100, 13 * 60 + 1, author_id=1)  # and gone again
    add("post.liked", 6, 100, 13 * 60 + 2, author_id=1)
    add("user.followed", 3, 1, 14, follower_id=3, followee_id=1)
    events.append(events[0])  # redelivered
    return events


async def snapshot(db: Database) -> dict[str, list[Any]]:
    """The notification tables by their natural keys (ids may differ)."""
    G, A, D = NotificationGroupRow, NotificationActorRow, NotificationDeliveryRow
    key = (G.recipient_id, G.group_key, G.window_start)
    async with db.session() as session:
        groups = await session.execute(
            select(*key, G.type, G.subject_id, G.latest_at, G.actor_count, G.is_read)
        )
        actors = await session.execute(select(*key, A.actor_id, A.acted_at).join(G))
        owed = await session.execute(select(*key, D.channel, D.not_before, D.held).join(G))
        claimed = await session.scalars(select(ConsumedEventRow.event_id))
    return {
        "groups": sorted(map(tuple, groups.all())),
        "actors": sorted(map(tuple, actors.all())),
        "deliveries": sorted(map(tuple, owed.all())),
        "claimed": sorted(claimed.all()),
    }


async def test_a_batch_leaves_what_one_by_one_leaves(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            await session.execute(
                insert(UserRow),
                [
                    {
                        "id": uid,
                        "platform": "socialink",
                        "username": f"u{uid}",
                        "username_key": f"u{uid}",
                        "email": f"u{uid}@example.com",
                        "email_key": f"u{uid}@example.com",
                        "password_hash": "-",
                        "display_name": f"u{uid}",
                    }
                    for uid in range(1, 8)
                ],
            )
            session.add(BlockRow(blocker_id=2, blocked_id=7))
            session.add(NotificationTypePreferenceRow(user_id=5, type="COMMENT_LIKE", channels=""))
            paused = datetime(2026, 11, 27, tzinfo=UTC)
            session.add(
                NotificationSettingsRow(user_id=2, platform="socialink", paused_until=paused)
            )
        events = mixed_stream()
        one_by_one = NotificationConsumer(db)
        for event in events:
            await one_by_one.handle(event)
        expected = await snapshot(db)
        async with db.transaction() as session:
            for table in (ConsumedEventRow, NotificationGroupRow):
                await session.execute(delete(table))
        batched = NotificationConsumer(db)
        await batched.handle_batch(events[:9])
        await batched.handle_batch(events[9:])
        await batched.handle_batch(events[:3])  # redelivered: nothing changes
        got = await snapshot(db)
    finally:
        await db.dispose()
    assert got == expected
    groups = {(r[0], r[3]): r for r in expected["groups"]}
    assert groups[(1, "POST_LIKE")][6] == 1  # the later group: 6 only (5 unliked)
    assert len([g for g in expected["groups"] if g[3] == "POST_LIKE"]) == 3
    assert not any(g[0] == 5 for g in expected["groups"])  # COMMENT_LIKE off for 5
    assert {a[3] for a in expected["actors"] if a[0] == 2} == {1, 3, 4, 5, 6}  # not 7 (block)
    assert all(d[5] for d in expected["deliveries"] if d[0] == 2)  # paused: held
