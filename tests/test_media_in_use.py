"""deleteMedia of media that a post or take is made of: CONFLICT, nothing changes.

Deleting the media row would take the post's media link or the whole take with it
through the foreign keys, skipping their events and counters (a trend's
participants, a template's uses). The content goes first, then the media may.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import GraphQLClient, create_users, insert_media
from tests.posts_helpers import DELETE as DELETE_POST
from tests.posts_helpers import POST, create_post
from tests.test_takes import DELETE_TAKE, TAKE, create_take, insert_video

DELETE_MEDIA = "mutation($id: ID!) { deleteMedia(id: $id) }"
MEDIA = "query($id: ID!) { media(id: $id) { id } }"


async def test_media_of_a_post_or_take_cannot_be_deleted_until_they_are(
    app: Any, gql: GraphQLClient
) -> None:
    (ana,) = await create_users(app, ["ana"])
    photo = await insert_media(app, ana)
    post = await create_post(gql, ana, mediaIds=[photo])
    video = await insert_video(app, ana)
    take = await create_take(app, gql, ana, videoMediaId=video)

    for media_id in (photo, video):
        refused = await gql(DELETE_MEDIA, {"id": media_id}, token=ana.token)
        assert refused.codes == ["CONFLICT"]
        assert (await gql(MEDIA, {"id": media_id})).ok()["media"] == {"id": media_id}
    shown = (await gql(POST, {"id": post["id"]}, token=ana.token)).ok()["post"]
    assert [media["id"] for media in shown["media"]] == [photo]
    assert (await gql(TAKE, {"id": take["id"]}, token=ana.token)).ok()["take"]["id"] == take["id"]

    (await gql(DELETE_POST, {"id": post["id"]}, token=ana.token)).ok()
    (await gql(DELETE_TAKE, {"id": take["id"]}, token=ana.token)).ok()
    for media_id in (photo, video):
        assert (await gql(DELETE_MEDIA, {"id": media_id}, token=ana.token)).ok() == {
            "deleteMedia": True
        }
        assert (await gql(MEDIA, {"id": media_id})).ok()["media"] is None
