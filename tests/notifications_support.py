"""Helpers of the notifications tests: the list query, waiting for the consumer, a clock
for event times."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Account, GraphQLClient
from tests.events_support import consumers_settled as settled
from tests.stories_support import Clock

NODE = """
id type actorCount summary isRead latestAt
actors { username }
subject {
  __typename
  ... on Post { id } ... on Comment { id } ... on Take { id } ... on TakeTrend { id }
  ... on TakeTemplate { id } ... on Story { id } ... on User { id }
}
"""
NOTIFICATIONS = f"""
query($first: Int, $after: String, $types: [NotificationType!]) {{
  notifications(first: $first, after: $after, types: $types) {{
    totalCount pageInfo {{ hasNextPage hasPreviousPage endCursor }}
    edges {{ cursor node {{ {NODE} }} }}
  }}
}}
"""
UNREAD = "query { unreadNotificationCount }"
MARK_READ = "mutation($upTo: DateTime) { markNotificationsRead(upTo: $upTo) }"


async def inbox(
    app: Any, gql: GraphQLClient, who: Account, **variables: Any
) -> list[dict[str, Any]]:
    """`who`'s notifications (first page), once every event so far was consumed."""
    await settled(app)
    result = await gql(NOTIFICATIONS, variables, token=who.token, platform=who.platform)
    return [edge["node"] for edge in result.ok()["notifications"]["edges"]]


async def page(gql: GraphQLClient, who: Account, **variables: Any) -> dict[str, Any]:
    result = await gql(NOTIFICATIONS, variables, token=who.token, platform=who.platform)
    return result.ok()["notifications"]  # type: ignore[no-any-return]


async def unread(app: Any, gql: GraphQLClient, who: Account) -> int:
    await settled(app)
    result = await gql(UNREAD, token=who.token, platform=who.platform)
    return int(result.ok()["unreadNotificationCount"])


def summaries(nodes: list[dict[str, Any]]) -> list[str]:
    return [node["summary"] for node in nodes]


EventClock = Clock
"""The time events are stamped with (`Event.stamp`), moved by tests: the consumer
groups by event time, so activities can be placed hours apart."""


@pytest.fixture
def event_clock(monkeypatch: pytest.MonkeyPatch) -> EventClock:
    clock = EventClock()
    monkeypatch.setattr("datasources.events.model.utcnow", clock)
    return clock
