"""Media bytes: a small blob store protocol and its local-directory implementation.

Blobs are immutable once written: a key is written once (atomically: a complete,
fsynced file renamed into place), read many times, and deleted with its media.
Nothing ever sees a half-written blob under its final name.
"""
from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024
# Flat, boring keys only: no separators, no "..", so a key can never escape the root.
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")


class InvalidBlobKey(ValueError):
    """A key that is not a plain name (a bug in the caller, never user input)."""


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    path: Path  # a local file: served with FileResponse (Range, sendfile)


class BlobStore(Protocol):
    """Where media bytes live. Keys are plain names chosen by the caller."""

    def temp_dir(self) -> Path:
        """A scratch directory on the same filesystem (so `put` of a file is a rename)."""
        ...

    async def put(self, key: str, source: Path | BinaryIO) -> StoredBlob:
        """Store `source` under `key`, atomically: a file is moved in (consumed), a
        stream is copied."""
        ...

    async def stat(self, key: str) -> StoredBlob | None: ...

    def open(self, key: str) -> tuple[BinaryIO, int]:
        """The blob opened for reading, and its size. FileNotFoundError when absent."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; absent is fine (deleting twice changes nothing)."""
        ...

    async def exists(self, key: str) -> bool: ...


def new_key() -> str:
    """A fresh random blob key. Not derived from the bytes: two uploads of the same
    file are two media with independent lifetimes, so deleting one keeps the other."""
    return uuid.uuid4().hex


def thumbnail_key(blob_key: str) -> str:
    return f"{blob_key}.thumb"


class LocalBlobStore:
    """Blobs as files under `root`, fanned out as `ab/cd/abcd…` to keep directories small."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if len(key) > 128 or not KEY.match(key):
            raise InvalidBlobKey(key)
        return self.root / key[:2] / key[2:4] / key

    def temp_dir(self) -> Path:
        scratch = self.root / ".tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        return scratch

    async def put(self, key: str, source: Path | BinaryIO) -> StoredBlob:
        return await asyncio.to_thread(self._put, key, source)

    def _put(self, key: str, source: Path | BinaryIO) -> StoredBlob:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Path):
            if not _move(source, target):  # another filesystem: copy, then drop the source
                _copy_in(source, target, self.temp_dir())
                source.unlink(missing_ok=True)
        else:
            _copy_in(source, target, self.temp_dir())
        return StoredBlob(key, target.stat().st_size, target)

    def _existing_path(self, key: str) -> Path | None:
        """The path for reads and deletes: a key we could never have written has no blob."""
        try:
            return self.path(key)
        except InvalidBlobKey:
            return None

    async def stat(self, key: str) -> StoredBlob | None:
        target = self._existing_path(key)
        if target is None:
            return None
        try:
            size = (await asyncio.to_thread(target.stat)).st_size
        except FileNotFoundError:
            return None
        return StoredBlob(key, size, target)

    def open(self, key: str) -> tuple[BinaryIO, int]:
        file = self.path(key).open("rb")
        return file, os.fstat(file.fileno()).st_size

    async def delete(self, key: str) -> None:
        # Empty fan-out directories stay: removing one could race a put that just made it.
        target = self._existing_path(key)
        if target is not None:
            await asyncio.to_thread(target.unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        target = self._existing_path(key)
        return target is not None and await asyncio.to_thread(target.is_file)


def _move(source: Path, target: Path) -> bool:
    """Rename a complete file into place; False when it is on another filesystem."""
    with source.open("rb") as file:
        os.fsync(file.fileno())
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return False
        raise
    return True


def _copy_in(source: Path | BinaryIO, target: Path, scratch: Path) -> None:
    """Copy into a temp file beside the blobs, fsync, then rename onto `target`."""
    fd, temp_name = tempfile.mkstemp(dir=scratch, prefix="put-")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(source, Path):
                with source.open("rb") as src:
                    shutil.copyfileobj(src, out, CHUNK)
            else:
                shutil.copyfileobj(source, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
