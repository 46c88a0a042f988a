"""The delivery decision: push and email are due at once, held during quiet hours (on the
user's own wall clock) or a pause, never dropped, and what was held comes out as one
grouped summary per channel when it ends. In-app is recorded all along."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from datasources.notifications.deliveries import Delivery, take_due
from datasources.notifications.quiet import held_until, is_quiet
from datasources.notifications.records import QuietHoursRecord
from resolvers.ids import split_id
from tests.conftest import Account, GraphQLClient, create_users
from tests.notifications_support import EventClock, event_clock, inbox, settled
from tests.posts_helpers import create_post, mark

__all__ = ["event_clock"]  # fixture

LIKE, UNLIKE = mark("likePost"), mark("unlikePost")
FOLLOW = "mutation($id: ID!) { follow(userId: $id) { following } }"
UPDATE = """
mutation($input: UpdateNotificationPreferencesInput!) {
  updateNotificationPreferences(input: $input) { emailDigest }
}
"""
TOKYO_NIGHTS = {"start": "22:00", "end": "07:00", "timezone": "Asia/Tokyo"}


async def run(gql: GraphQLClient, query: str, actor: Account, **variables: Any) -> Any:
    return (await gql(query, variables, token=actor.token, platform=actor.platform)).ok()


def pk(global_id: str) -> int:
    parts = split_id(global_id)
    assert parts is not None
    return int(parts[1])


async def groups(app: Any, gql: GraphQLClient, who: Account) -> dict[str, int]:
    return {n["type"]: pk(n["id"]) for n in await inbox(app, gql, who)}


def shape(deliveries: list[Delivery]) -> set[tuple[str, tuple[int, ...], bool]]:
    return {(d.channel, tuple(sorted(d.group_ids)), d.summary) for d in deliveries}


def test_quiet_hours_are_read_on_the_zones_wall_clock() -> None:
    tokyo = QuietHoursRecord(**TOKYO_NIGHTS)
    evening = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo, 14:00 in UTC
    assert is_quiet(tokyo, evening)
    assert not is_quiet(tokyo, datetime(2026, 11, 27, 23, 0, tzinfo=UTC))  # 08:00 there
    assert held_until(tokyo, None, evening) == datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
    # New York's nights move with daylight saving: 22:00 EDT is 02:00Z, 22:00 EST 03:00Z
    new_york = QuietHoursRecord("22:00", "07:00", "America/New_York")
    assert is_quiet(new_york, datetime(2026, 7, 1, 2, 30, tzinfo=UTC))
    assert not is_quiet(new_york, datetime(2026, 12, 1, 2, 30, tzinfo=UTC))
    # a pause that ends inside quiet hours waits for them to end too
    paused = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # midnight in Tokyo
    assert held_until(tokyo, paused, datetime(2026, 11, 27, 9, 0, tzinfo=UTC)) == datetime(
        2026, 11, 27, 22, 0, tzinfo=UTC
    )


async def test_quiet_hours_hold_push_and_release_one_summary(
    app: Any, gql: GraphQLClient, event_clock: EventClock
) -> None:
    ada, bob, cyd, dan = await create_users(app, ["ada", "bob", "cyd", "dan"])
    await run(gql, UPDATE, ada, input={"quietHours": TOKYO_NIGHTS})
    post = await create_post(gql, ada)
    db = app.state.runtime.stores.db
    night = datetime.now(UTC).replace(hour=14, minute=0, second=0, microsecond=0) + timedelta(
        days=1
    )  # 23:00 in Tokyo, mid-afternoon in UTC
    morning = night + timedelta(hours=8)  # 07:00 in Tokyo

    event_clock.now = night
    await run(gql, LIKE, bob, id=post["id"])
    await run(gql, LIKE, cyd, id=post["id"])
    event_clock.move(hours=1)
    await run(gql, FOLLOW, dan, id=ada.id)
    await settled(app)
    ids = await groups(app, gql, ada)  # in-app: recorded at once
    assert set(ids) == {"POST_LIKE", "FOLLOW"}

    assert await take_due(db, morning - timedelta(minutes=1)) == []  # still night there
    released = await take_due(db, morning)
    # one push summing up the night (likes and follows are not emailed by default)
    assert shape(released) == {("PUSH", tuple(sorted(ids.values())), True)}
    assert all(d.user_id == pk(ada.id) for d in released)
    assert await take_due(db, morning + timedelta(days=1)) == []  # taken once

    event_clock.now = morning + timedelta(minutes=30)
    await run(gql, LIKE, dan, id=post["id"])  # a new actor, after the quiet hours
    await settled(app)
    due = await take_due(db, event_clock.now)
    assert shape(due) == {("PUSH", (ids["POST_LIKE"],), False)}


async def test_a_pause_holds_push_and_email_and_withdrawal_cancels(
    app: Any, gql: GraphQLClient, event_clock: EventClock
) -> None:
    ada, bob, cyd = await create_users(app, ["ada", "bob", "cyd"])
    start = event_clock.now
    until = start + timedelta(hours=2)
    await run(gql, UPDATE, ada, input={"pausedUntil": until.isoformat()})
    post = await create_post(gql, ada, caption="hi")
    mention = await create_post(gql, bob, caption="look @ada")  # MENTION: push and email
    await run(gql, LIKE, cyd, id=post["id"])
    await run(gql, LIKE, bob, id=post["id"])
    await run(gql, UNLIKE, bob, id=post["id"])
    await settled(app)
    ids = await groups(app, gql, ada)
    assert set(ids) == {"POST_LIKE", "MENTION"} and mention["id"]
    db = app.state.runtime.stores.db

    assert await take_due(db, until - timedelta(seconds=1)) == []
    released = await take_due(db, until)
    assert shape(released) == {
        ("PUSH", tuple(sorted(ids.values())), True),
        ("EMAIL", (ids["MENTION"],), True),
    }

    event_clock.now = until  # the pause is over: due at once
    await run(gql, LIKE, bob, id=post["id"])
    await run(gql, UNLIKE, cyd, id=post["id"])
    await settled(app)
    assert shape(await take_due(db, until)) == {("PUSH", (ids["POST_LIKE"],), False)}

    event_clock.now = until + timedelta(hours=1)
    await run(gql, UPDATE, ada, input={"pausedUntil": (until + timedelta(hours=5)).isoformat()})
    await run(gql, LIKE, cyd, id=post["id"])
    await run(gql, UNLIKE, cyd, id=post["id"])
    await run(gql, UNLIKE, bob, id=post["id"])  # the group is gone: nothing is owed
    await settled(app)
    assert await take_due(db, until + timedelta(days=1)) == []


async def test_the_email_digest_waits_for_its_morning_hour(
    app: Any, gql: GraphQLClient, event_clock: EventClock
) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    await run(gql, UPDATE, ada, input={"quietHours": TOKYO_NIGHTS, "emailDigest": True})
    night = datetime.now(UTC).replace(hour=14, minute=0, second=0, microsecond=0) + timedelta(
        days=1
    )  # 23:00 in Tokyo
    event_clock.now = night
    await create_post(gql, bob, caption="look @ada")  # MENTION: push and email
    await settled(app)
    (mention,) = (await groups(app, gql, ada)).values()
    db = app.state.runtime.stores.db

    assert shape(await take_due(db, night + timedelta(hours=8))) == {
        ("PUSH", (mention,), True)  # 07:00 in Tokyo: the quiet hours end
    }
    assert await take_due(db, night + timedelta(hours=8, minutes=59)) == []
    assert shape(await take_due(db, night + timedelta(hours=9))) == {
        ("EMAIL", (mention,), True)  # 08:00 in Tokyo: the daily digest
    }
