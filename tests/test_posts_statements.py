"""The posts store builds each read statement once per shape and runs it with the
call's values (datasources/posts/store.py, "read statements"): a later call with
another viewer, platform, author list or cursor must never see an earlier call's."""

from __future__ import annotations

from typing import Any

from datasources.posts.records import After, Extras
from datasources.posts.store import PostStore
from resolvers.ids import split_id
from tests.conftest import GraphQLClient, create_users
from tests.posts_helpers import add_comment, create_post, mark

FOLLOW = "mutation($u: ID!) { follow(userId: $u) { following } }"
UNFOLLOW = "mutation($u: ID!) { unfollow(userId: $u) { following } }"
BLOCK = "mutation($u: ID!) { block(userId: $u) { blocking } }"


def pk(global_id: str) -> int:
    parts = split_id(global_id)
    assert parts is not None
    return int(parts[1])


async def test_reused_statements_take_each_calls_values(app: Any, gql: GraphQLClient) -> None:
    store: PostStore = app.state.runtime.stores.posts
    reader, author, loner = await create_users(app, ["reader", "author", "loner"])
    (await gql(FOLLOW, {"u": author.id}, token=reader.token)).ok()
    public = await create_post(gql, author, "public")
    followers = await create_post(gql, author, "followers", visibility="FOLLOWERS")
    own = await create_post(gql, loner, "own")
    await add_comment(gql, loner, "first", postId=public["id"])
    await add_comment(gql, reader, "second", postId=public["id"])
    (await gql(mark("likePost"), {"id": public["id"]}, token=reader.token)).ok()
    (await gql(FOLLOW, {"u": author.id}, token=loner.token)).ok()
    (await gql(mark("savePost"), {"id": followers["id"]}, token=loner.token)).ok()
    (await gql(UNFOLLOW, {"u": author.id}, token=loner.token)).ok()
    r, a, lo = pk(reader.id), pk(author.id), pk(loner.id)
    ids = [pk(public["id"]), pk(followers["id"]), pk(own["id"])]

    def captions(items: list[Any]) -> list[str | None]:
        return [post.caption for post in items]

    feed = await store.feed("socialink", r, None, 10)
    assert captions(feed.items) == ["followers", "public"] and feed.total == 2
    assert captions((await store.feed("socialink", lo, None, 10)).items) == ["own"]
    assert (await store.feed("vignette", r, None, 10)).items == []
    after = After(feed.times[0], feed.items[0].id)
    assert captions((await store.feed("socialink", r, after, 10)).items) == ["public"]
    assert captions((await store.feed("socialink", lo, after, 10)).items) == []

    pages = await store.user_posts("socialink", r, [a, lo], None, 10)
    assert captions(pages[a].items) == ["followers", "public"] and pages[a].total == 2
    assert captions(pages[lo].items) == ["own"]
    pages = await store.user_posts("socialink", lo, [a], None, 10)
    assert captions(pages[a].items) == ["public"] and pages[a].total == 1
    pages = await store.user_posts("socialink", None, [a], None, 1)
    assert captions(pages[a].items) == ["public"] and not pages[a].has_next

    assert await store.marks(r, ids) == {ids[0]: frozenset({"liked"})}
    assert await store.marks(lo, ids) == {ids[1]: frozenset({"saved"})}
    assert set(await store.by_ids("socialink", ids)) == set(ids)
    assert await store.by_ids("vignette", ids) == {}

    with_comments = Extras(comments=(1, None), viewer_id=r)
    page = await store.feed("socialink", r, None, 10, with_comments)
    assert page.extras is not None and page.extras.comments is not None
    thread = page.extras.comments[ids[0]]
    assert [c.body for c in thread.items] == ["first"] and thread.has_next and thread.total == 2
    cursor = After(thread.times[0], thread.items[0].id)
    threads = await store.comments.threads("socialink", lo, "post", ids[:1], cursor, 5)
    assert [c.body for c in threads[ids[0]].items] == ["second"] and threads[ids[0]].total == 2
    threads = await store.comments.threads("socialink", None, "post", ids[1:], None, 5)
    assert threads[ids[1]].items == [] and threads[ids[1]].total == 0

    saved = await store.saved_posts("socialink", lo, None, 10)
    assert captions(saved.items) == [] and saved.total == 0  # FOLLOWERS-only, not followed
    (await gql(FOLLOW, {"u": author.id}, token=loner.token)).ok()
    saved = await store.saved_posts("socialink", lo, None, 10)
    assert captions(saved.items) == ["followers"] and saved.total == 1
    assert (await store.saved_posts("socialink", r, None, 10)).items == []


async def test_user_posts_cursor_counts_per_author(app: Any, gql: GraphQLClient) -> None:
    store: PostStore = app.state.runtime.stores.posts
    first, second = await create_users(app, ["first", "second"])
    for i in range(3):
        await create_post(gql, first, f"f{i}")
    await create_post(gql, second, "s0")
    a, b = pk(first.id), pk(second.id)
    page = (await store.user_posts("socialink", None, [a], None, 1))[a]
    after = After(page.times[0], page.items[0].id)
    pages = await store.user_posts("socialink", None, [a, b], after, 1)
    assert [p.caption for p in pages[a].items] == ["f1"] and pages[a].has_next
    assert pages[a].total == 3 and pages[b].total == 1


async def test_likers_per_viewer_and_cursor(app: Any, gql: GraphQLClient) -> None:
    store: PostStore = app.state.runtime.stores.posts
    author, early, late, blocker = await create_users(app, ["author", "early", "late", "blocker"])
    post = await create_post(gql, author, "liked")
    for liker in (early, late):
        (await gql(mark("likePost"), {"id": post["id"]}, token=liker.token)).ok()
    (await gql(BLOCK, {"u": late.id}, token=blocker.token)).ok()
    p, e, la = pk(post["id"]), pk(early.id), pk(late.id)

    page = (await store.likers("socialink", None, [p], None, 5))[p]
    assert [u.id for u in page.items] == [la, e] and page.total == 2
    page = (await store.likers("socialink", pk(blocker.id), [p], None, 5))[p]
    assert [u.id for u in page.items] == [e] and page.total == 1
    first = (await store.likers("socialink", None, [p], None, 1))[p]
    assert first.has_next
    after = After(first.times[0], first.items[0].id)
    page = (await store.likers("socialink", None, [p], after, 1))[p]
    assert [u.id for u in page.items] == [e] and not page.has_next and page.total == 2
    assert (await store.likers("vignette", None, [p], None, 5))[p].items == []
    assert await store.mentions([p]) == {}
