"""Per-request DataLoaders over the posts store: one query per batch, never per item.

Pages of many lists at once (each user's posts, each post's first comments, each
post's likers) are loaders too: their keys carry the page arguments, and a batch
groups keys with the same arguments into one windowed statement.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from datasources.loading import DataLoader, forget
from datasources.media.store import MediaRecord
from datasources.posts.records import (
    After,
    CommentRecord,
    Extras,
    LocationRecord,
    PageExtras,
    PostRecord,
    Slice,
)
from datasources.posts.store import PostStore
from datasources.users.loaders import UserLoaders
from datasources.users.store import UserRecord

MAX_BATCH = 500
K = TypeVar("K")
V = TypeVar("V")

NO_MARKS: frozenset[str] = frozenset()
PageKey = tuple[int | None, str, int, int, After | None]
"""(viewer id, list kind, owner id, limit, after): one page of one list."""


class PostLoaders:
    def __init__(self, store: PostStore, platform: str, users: UserLoaders | None = None) -> None:
        self.store = store
        self.platform = platform
        self.users = users  # primed with the authors of the posts loaded by id
        self.known_marks: dict[tuple[int, int, str], bool] = {}
        self.by_id = DataLoader[int, PostRecord | None](self._posts, max_batch_size=MAX_BATCH)
        self.comment = DataLoader[int, CommentRecord | None](
            self._comments, max_batch_size=MAX_BATCH
        )
        self.location = DataLoader[int, LocationRecord | None](
            self._locations, max_batch_size=MAX_BATCH
        )
        self.media = DataLoader[int, list[MediaRecord]](self._media, max_batch_size=MAX_BATCH)
        self.mentions = DataLoader[int, list[int]](self._mentions, max_batch_size=MAX_BATCH)
        self.posts_page = DataLoader[PageKey, Slice[PostRecord]](
            self._posts_pages, max_batch_size=MAX_BATCH
        )
        self.comments_page = DataLoader[PageKey, Slice[CommentRecord]](
            self._comment_pages, max_batch_size=MAX_BATCH
        )
        self.likers_page = DataLoader[PageKey, Slice[UserRecord]](
            self._likers_pages, max_batch_size=MAX_BATCH
        )
        self._flags: dict[tuple[str, int], DataLoader[int, bool]] = {}
        self._marks: dict[int, DataLoader[int, frozenset[str]]] = {}

    # ── the viewer's marks ─────────────────────────────────────────────

    def prime_extras(
        self, viewer_id: int | None, posts: list[PostRecord], extras: Extras, found: PageExtras
    ) -> None:
        """Cache what a page read along (see PostStore._read_extras), under the keys the
        fields of its posts will ask for."""
        ids = [post.id for post in posts]
        if found.media is not None:
            media = found.media
            self.media.prime_many({pk: media.get(pk, []) for pk in ids})
        if found.marks is not None and extras.marks_of is not None:
            marks = found.marks
            self.marks(extras.marks_of).prime_many({pk: marks.get(pk, NO_MARKS) for pk in ids})
        if found.comments is not None and extras.comments is not None:
            limit, after = extras.comments
            self.comments_page.prime_many(
                {(viewer_id, "post", pk, limit, after): page for pk, page in found.comments.items()}
            )
            self._prime_threads(found.comments.values())

    def note_mark(self, viewer_id: int, post_id: int, mark: str, value: bool) -> None:
        """What a write just made true (liked, saved), so the answer needs no read."""
        self.known_marks[(viewer_id, post_id, mark)] = value

    def marks(self, viewer_id: int) -> DataLoader[int, frozenset[str]]:
        """Whether `viewer_id` liked and saved each post: {"liked", "saved"} or fewer."""
        loader = self._marks.get(viewer_id)
        if loader is None:
            store = self.store  # not self: the loader must not keep its holder alive

            async def load(ids: Sequence[int]) -> list[frozenset[str]]:
                found = await store.marks(viewer_id, ids)
                return [found.get(pk, NO_MARKS) for pk in ids]

            loader = DataLoader[int, frozenset[str]](load, max_batch_size=MAX_BATCH)
            self._marks[viewer_id] = loader
        return loader

    def comment_liked(self, viewer_id: int) -> DataLoader[int, bool]:
        return self._flag("comment_liked", viewer_id, self.store.comments.liked)

    # ── cache upkeep ───────────────────────────────────────────────────

    def prime(self, posts: Iterable[PostRecord]) -> None:
        self.by_id.prime_many({post.id: post for post in posts})

    def prime_comments(self, comments: Iterable[CommentRecord]) -> None:
        self.comment.prime_many({comment.id: comment for comment in comments})

    def _prime_threads(self, pages: Iterable[Slice[CommentRecord]]) -> None:
        """The comments of thread pages, and their authors, however the pages were read:
        the fields of those comments then load nothing."""
        for page in pages:
            self.prime_comments(page.items)
            if self.users is not None:
                self.users.prime(page.users)

    def replace(self, post: PostRecord) -> None:
        """After a write: the fresh record, and flags and pages that may have changed."""
        forget(self.by_id, [post.id])
        self.by_id.prime(post.id, post)
        self._drop_derived([post.id])

    def replace_comment(self, comment: CommentRecord) -> None:
        forget(self.comment, [comment.id])
        self.comment.prime(comment.id, comment)
        for (kind, _), loader in self._flags.items():
            if kind == "comment_liked":
                forget(loader, [comment.id])

    def forget(self, post_id: int) -> None:
        forget(self.by_id, [post_id])
        self._drop_derived([post_id])

    def _drop_derived(self, post_ids: list[int]) -> None:
        for marks in self._marks.values():
            forget(marks, post_ids)
        for pages in (self.posts_page, self.comments_page, self.likers_page):
            pages.cache_map.clear()
        forget(self.mentions, post_ids)

    # ── batch functions ────────────────────────────────────────────────

    def _flag(
        self,
        kind: str,
        viewer_id: int,
        read: Callable[[int, Sequence[int]], Awaitable[set[int]]],
    ) -> DataLoader[int, bool]:
        loader = self._flags.get((kind, viewer_id))
        if loader is None:

            async def load(ids: Sequence[int]) -> list[bool]:
                found = await read(viewer_id, ids)
                return [pk in found for pk in ids]

            loader = DataLoader[int, bool](load, max_batch_size=MAX_BATCH)
            self._flags[(kind, viewer_id)] = loader
        return loader

    async def _posts(self, ids: Sequence[int]) -> list[PostRecord | None]:
        found = await self.store.by_ids(self.platform, ids)
        if self.users is not None:
            self.users.prime(author for _, author in found.values())
        return [found[pk][0] if pk in found else None for pk in ids]

    async def _comments(self, ids: Sequence[int]) -> list[CommentRecord | None]:
        found = await self.store.comments.by_ids(self.platform, ids)
        return [found.get(pk) for pk in ids]

    async def _locations(self, ids: Sequence[int]) -> list[LocationRecord | None]:
        found = await self.store.locations(self.platform, ids)
        return [found.get(pk) for pk in ids]

    async def _media(self, ids: Sequence[int]) -> list[list[MediaRecord]]:
        found = await self.store.media(ids)
        return [found.get(pk, []) for pk in ids]

    async def _mentions(self, ids: Sequence[int]) -> list[list[int]]:
        found = await self.store.mentions(ids)
        return [found.get(pk, []) for pk in ids]

    async def _posts_pages(self, keys: Sequence[PageKey]) -> list[Slice[PostRecord]]:
        async def read(
            viewer_id: int | None, _kind: str, ids: list[int], limit: int, after: After | None
        ) -> dict[int, Slice[PostRecord]]:
            return await self.store.user_posts(self.platform, viewer_id, ids, after, limit)

        return await _grouped(keys, read)

    async def _comment_pages(self, keys: Sequence[PageKey]) -> list[Slice[CommentRecord]]:
        async def read(
            viewer_id: int | None, kind: str, ids: list[int], limit: int, after: After | None
        ) -> dict[int, Slice[CommentRecord]]:
            return await self.store.comments.threads(
                self.platform, viewer_id, kind, ids, after, limit
            )

        pages: list[Slice[CommentRecord]] = await _grouped(keys, read)
        self._prime_threads(pages)
        return pages

    async def _likers_pages(self, keys: Sequence[PageKey]) -> list[Slice[UserRecord]]:
        async def read(
            viewer_id: int | None, _kind: str, ids: list[int], limit: int, after: After | None
        ) -> dict[int, Slice[UserRecord]]:
            return await self.store.likers(self.platform, viewer_id, ids, after, limit)

        return await _grouped(keys, read)


async def _grouped(
    keys: Sequence[PageKey],
    read: Callable[[int | None, str, list[int], int, After | None], Awaitable[dict[int, Any]]],
) -> list[Any]:
    """One read per group of keys that share viewer, kind, limit and cursor."""
    groups: dict[tuple[int | None, str, int, After | None], list[int]] = {}
    for viewer_id, kind, owner_id, limit, after in keys:
        groups.setdefault((viewer_id, kind, limit, after), []).append(owner_id)
    results: dict[PageKey, Any] = {}
    for (viewer_id, kind, limit, after), ids in groups.items():
        unique = list(dict.fromkeys(ids))
        found = await read(viewer_id, kind, unique, limit, after)
        for owner_id in unique:
            results[(viewer_id, kind, owner_id, limit, after)] = found[owner_id]
    return [results[key] for key in keys]
