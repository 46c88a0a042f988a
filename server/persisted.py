"""Persisted queries: Apollo's automatic persisted queries (APQ) and trusted documents.

APQ (`extensions.persistedQuery = {version: 1, sha256Hash}`, on GET or POST): a client
sends the hash alone; an unknown hash is answered PERSISTED_QUERY_NOT_FOUND, and the
client retries with hash and text, which registers the text for everyone. Texts are
kept in the cache (datasources/cache.py: Redis when configured, so every replica knows
a hash one of them learnt) for `persisted_query_ttl_seconds`, and in a per-process LRU
in front of it: a hash names one text forever, so the LRU never needs invalidating and a
hash-only request costs no round trip once seen. The LRU hands out the same string
object each time, so the parse and validation caches (server/limits.py, keyed by text)
hit without rehashing a new copy: parse and validation are in effect cached by hash.

Trusted documents (`trusted_documents`, off by default): only the documents registered
with `entativa documents register DIR` run, by hash or by identical text; APQ
registration is refused. They are kept in a file, `data_dir/trusted_documents.json`
(hash → document), not in the database: the documents are a build artifact of the
client releases, shipped with the deployment like a manifest, read at startup into
memory (a lookup per request must not cost a query) and reread when the file changes.
Registering merges: an older client release's documents keep working.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from graphql import GraphQLSchema, parse, validate

from datasources.cache import Cache
from resolvers.errors import ApiError, BadUserInput
from server.settings import Settings

TRUSTED_FILE = "trusted_documents.json"
CACHE_PREFIX = "apq:"
LRU_SIZE = 1024  # hashes kept per process
RECHECK_SECONDS = 1.0  # how often the trusted documents file is checked for changes
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class PersistedQueryNotFound(ApiError):
    """Apollo clients look for this code (or message) and resend with the query text."""

    code = "PERSISTED_QUERY_NOT_FOUND"

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


class PersistedQueryNotSupported(ApiError):
    """APQ is switched off: clients stop sending hashes alone."""

    code = "PERSISTED_QUERY_NOT_SUPPORTED"

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotSupported")


class PersistedQueryNotInList(ApiError):
    """Trusted-documents mode: the text is not one of the registered documents."""

    code = "PERSISTED_QUERY_NOT_IN_LIST"

    def __init__(self) -> None:
        super().__init__("only registered documents run on this server")


def document_hash(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


class TrustedDocuments:
    """The registered documents of `data_dir/trusted_documents.json`, reread on change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._documents: dict[str, str] = {}
        self._stamp: float | None = None
        self._checked = float("-inf")

    @classmethod
    def of(cls, settings: Settings) -> TrustedDocuments:
        return cls(settings.data_dir / TRUSTED_FILE)

    def get(self, sha256: str) -> str | None:
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS:
            self._checked = now
            self._reload()
        return self._documents.get(sha256)

    def _reload(self) -> None:
        try:
            stamp = self.path.stat().st_mtime
        except FileNotFoundError:
            self._documents, self._stamp = {}, None
            return
        if stamp != self._stamp:
            self._documents = load_documents(self.path)
            self._stamp = stamp


def load_documents(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    loaded = json.loads(path.read_text())
    return {str(k): str(v) for k, v in loaded.items()}


def register_directory(path: Path, directory: Path, schema: GraphQLSchema) -> dict[str, str]:
    """Adds every .graphql file under `directory` (hash → text) to the file at `path`.

    Each document must be valid against `schema`: a typo is found now, not by the first
    client that sends it. Returns the documents added. Written atomically (a server
    rereading the file never sees half of it).
    """
    files = sorted(directory.rglob("*.graphql"))
    if not files:
        raise ValueError(f"no .graphql files under {directory}")
    added: dict[str, str] = {}
    for file in files:
        text = file.read_text()
        errors = validate(schema, parse(text))
        if errors:
            raise ValueError(f"{file}: {errors[0].message}")
        added[document_hash(text)] = text
    documents = load_documents(path) | added
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(documents, indent=1, sort_keys=True))
    os.replace(partial, path)
    return added


class PersistedQueries:
    """Resolves a request's document text from its `extensions.persistedQuery`."""

    def __init__(self, settings: Settings, cache: Cache) -> None:
        self.enabled = settings.persisted_queries
        self.ttl = settings.persisted_query_ttl_seconds
        self.trusted = TrustedDocuments.of(settings) if settings.trusted_documents else None
        self.cache = cache
        self._known: OrderedDict[str, str] = OrderedDict()

    async def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The text to execute; raises a GraphQLError with the code a client acts on."""
        persisted = (extensions or {}).get("persistedQuery")
        if self.trusted is not None:
            return self._trusted(query, persisted)
        if persisted is None:
            return query  # the usual request: nothing to look up
        if not self.enabled:
            raise PersistedQueryNotSupported()
        sha256 = _hash_of(persisted)
        if query is not None:
            if document_hash(query) != sha256:
                raise BadUserInput("provided sha does not match query")
            if sha256 not in self._known:
                await self.cache.set(CACHE_PREFIX + sha256, query, self.ttl)
            return self._remember(sha256, query)
        known = self._known.get(sha256)
        if known is not None:
            self._known.move_to_end(sha256)
            return known
        stored = await self.cache.get(CACHE_PREFIX + sha256)
        if stored is None:
            raise PersistedQueryNotFound()
        return self._remember(sha256, stored)

    async def resolve_payload(self, payload: Any) -> Any:
        """A websocket subscribe payload (or HTTP stream request) with its text resolved."""
        if not isinstance(payload, dict):
            return payload  # refused by the preparer, with its message
        query, extensions = payload.get("query"), payload.get("extensions")
        if not isinstance(query, str | None) or not isinstance(extensions, dict | None):
            return payload
        resolved = await self.resolve(query, extensions)
        return payload if resolved is query else {**payload, "query": resolved}

    def _trusted(self, query: str | None, persisted: Any) -> str:
        assert self.trusted is not None
        if persisted is not None:
            sha256 = _hash_of(persisted)
            if query is not None and document_hash(query) != sha256:
                raise BadUserInput("provided sha does not match query")
            document = self.trusted.get(sha256)
            if document is None:
                raise PersistedQueryNotFound() if query is None else PersistedQueryNotInList()
            return document
        if query is None:
            raise BadUserInput("send a registered document's hash (extensions.persistedQuery)")
        document = self.trusted.get(document_hash(query))
        if document is None:
            raise PersistedQueryNotInList()
        return document

    def _remember(self, sha256: str, query: str) -> str:
        self._known[sha256] = query
        self._known.move_to_end(sha256)
        while len(self._known) > LRU_SIZE:
            self._known.popitem(last=False)
        return query


def _hash_of(persisted: Any) -> str:
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise BadUserInput("extensions.persistedQuery must be {version: 1, sha256Hash}")
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or not SHA256_HEX.match(sha256):
        raise BadUserInput("extensions.persistedQuery.sha256Hash must be 64 lowercase hex digits")
    return sha256
