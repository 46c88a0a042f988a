"""What both search engines share: text analysis, the ranking constants, the
highlighter, cursors and the document <-> source mapping.

Analysis is done here, not by the engines: every indexed text and every query is cut
into lower-case runs of letters and digits (`words`), and the engines index those
words separated by spaces (Tantivy's default tokenizer, an Elasticsearch
whitespace+lowercase analyzer). So `alice_smith`, `#Sunset` and `Lisbon,` give
the same terms on both engines, and the highlighter marks exactly what matched.
The ranking formula is in the docstring of datasources/search/store.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from datasources.search.records import (
    PUBLIC,
    HashtagDoc,
    LocationDoc,
    PostDoc,
    SearchDoc,
    SearchType,
    TakeDoc,
    UserDoc,
    doc_key,
    utc,
)

_WORD = re.compile(r"[^\W_]+")

# Per-field weight of a word's BM25 score. A username or a tag named like the query
# is what people look for most; a word somewhere in a bio least.
FIELD_BOOSTS: dict[str, float] = {
    "username": 3.0,
    "display_name": 2.0,
    "bio": 1.0,
    "caption": 1.0,
    "hashtags": 2.0,
    "place": 1.5,  # a post's or take's location name, a location's name
    "tag": 3.0,  # a hashtag's name
}
TEXT_FIELDS = tuple(FIELD_BOOSTS)
# A query word found only with a typo adds this constant instead of BM25 (Tantivy's
# fuzzy queries do not score by BM25, and the same rule on Elasticsearch keeps the
# two engines ranking alike); an exact match gets BM25 plus this constant.
TYPO_SCORE = 0.5
POPULARITY_WEIGHT = 0.25
RECENCY_WEIGHT = 0.5
RECENCY_HALF_LIFE = timedelta(days=14)
FOLLOWED_BOOST = 1.5
# Tantivy rescoring works on the best BM25 candidates only (see tantivy_index.py).
CANDIDATES = 1000
MAX_PAGE = 100
MAX_QUERY_WORDS = 16


def words(text: str | None) -> list[str]:
    return _WORD.findall(text.lower()) if text else []


def analyzed(text: str | None) -> str:
    return " ".join(words(text))


def fuzziness(word: str) -> int:
    """Edits allowed for a query word: none below 4 characters, one from 4, two from 8."""
    return 2 if len(word) >= 8 else 1 if len(word) >= 4 else 0


def query_words(text: str) -> list[str]:
    """The distinct words of a query, in order (a repeated word counts once), at most
    MAX_QUERY_WORDS of them: each word is 2 × 7 clauses, and engines cap clauses."""
    return list(dict.fromkeys(words(text)))[:MAX_QUERY_WORDS]


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a transposition is one edit, as in both
    engines' fuzzy queries); any value above `limit` is returned as limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)


def matches(query_word: str, word: str) -> bool:
    if query_word == word:
        return True
    allowed = fuzziness(query_word)
    return allowed > 0 and edit_distance(query_word, word, allowed) <= allowed


def highlight(text: str | None, terms: list[str]) -> str | None:
    """The text, HTML-escaped, with <em>…</em> around each word a query word matched
    (exactly or within its typo allowance); None when no word matched."""
    if not text or not terms:
        return None
    out: list[str] = []
    position = 0
    found = False
    for match in _WORD.finditer(text):
        word = match.group().lower()
        if any(matches(term, word) for term in terms):
            out.append(html.escape(text[position : match.start()]))
            out.append(f"<em>{html.escape(match.group())}</em>")
            position = match.end()
            found = True
    if not found:
        return None
    out.append(html.escape(text[position:]))
    return "".join(out)


def highlight_doc(doc: SearchDoc, terms: list[str]) -> str | None:
    """The first of the document's texts (in field-weight order) with a matched word."""
    texts: list[str | None]
    if isinstance(doc, UserDoc):
        texts = [doc.username, doc.display_name, doc.bio]
    elif isinstance(doc, PostDoc | TakeDoc):
        tags = " ".join(f"#{tag}" for tag in doc.hashtags) or None
        texts = [doc.caption, tags, doc.location_name]
    else:
        texts = [doc.name]
    for text in texts:
        marked = highlight(text, terms)
        if marked is not None:
            return marked
    return None


# ── the flat form both engines index ────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Flat:
    key: str
    type: SearchType
    platform: str
    doc_id: str
    texts: dict[str, str]  # analyzed text per field of FIELD_BOOSTS (absent = empty)
    suggest: str  # analyzed names autocomplete matches (users, hashtags, locations)
    owner_id: int | None  # the account a follow boosts: the user, or the author
    user_id: int | None  # users only
    author_id: int | None  # posts and takes only
    popularity: int  # likes, followers or uses
    like_count: int | None  # posts and takes only
    created_at: datetime | None  # posts and takes only
    latitude: float | None
    longitude: float | None
    visibility: str
    source: dict[str, Any]


def flatten(doc: SearchDoc) -> Flat:
    texts: dict[str, str] = {}
    if isinstance(doc, UserDoc):
        texts = {
            "username": analyzed(doc.username),
            "display_name": analyzed(doc.display_name),
            "bio": analyzed(doc.bio),
        }
        suggest = analyzed(f"{doc.username} {doc.display_name or ''}")
        owner, user, author, popularity, likes = doc.id, doc.id, None, doc.follower_count, None
        created, lat, lon = None, None, None
        visibility = PUBLIC
    elif isinstance(doc, PostDoc | TakeDoc):
        texts = {
            "caption": analyzed(doc.caption),
            "hashtags": analyzed(" ".join(doc.hashtags)),
            "place": analyzed(doc.location_name),
        }
        suggest = ""
        owner, user, author = doc.author_id, None, doc.author_id
        popularity, likes = doc.like_count, doc.like_count
        created = utc(doc.created_at)
        lat, lon = doc.latitude, doc.longitude
        if lat is None or lon is None:
            lat = lon = None
        visibility = doc.visibility
    elif isinstance(doc, HashtagDoc):
        texts = {"tag": analyzed(doc.name)}
        suggest = texts["tag"]
        owner, user, author, popularity, likes = None, None, None, doc.usage_count, None
        created, lat, lon, visibility = None, None, None, PUBLIC
    else:
        texts = {"place": analyzed(doc.name)}
        suggest = texts["place"]
        owner, user, author, popularity, likes = None, None, None, 0, None
        created, lat, lon, visibility = None, doc.latitude, doc.longitude, PUBLIC
    return Flat(
        key=doc_key(doc.platform, doc.type, doc.doc_id),
        type=doc.type,
        platform=doc.platform,
        doc_id=doc.doc_id,
        texts={name: value for name, value in texts.items() if value},
        suggest=suggest,
        owner_id=owner,
        user_id=user,
        author_id=author,
        popularity=max(popularity, 0),
        like_count=likes,
        created_at=created,
        latitude=lat,
        longitude=lon,
        visibility=visibility,
        source=to_source(doc),
    )


def to_source(doc: SearchDoc) -> dict[str, Any]:
    if isinstance(doc, UserDoc):
        return {
            "type": doc.type.value,
            "id": doc.id,
            "platform": doc.platform,
            "username": doc.username,
            "display_name": doc.display_name,
            "bio": doc.bio,
            "is_private": doc.is_private,
            "follower_count": doc.follower_count,
        }
    if isinstance(doc, PostDoc | TakeDoc):
        return {
            "type": doc.type.value,
            "id": doc.id,
            "platform": doc.platform,
            "author_id": doc.author_id,
            "caption": doc.caption,
            "created_at": utc(doc.created_at).isoformat(),
            "hashtags": list(doc.hashtags),
            "location_name": doc.location_name,
            "latitude": doc.latitude,
            "longitude": doc.longitude,
            "like_count": doc.like_count,
            "visibility": doc.visibility,
        }
    if isinstance(doc, HashtagDoc):
        return {
            "type": doc.type.value,
            "name": doc.name,
            "platform": doc.platform,
            "usage_count": doc.usage_count,
        }
    return {
        "type": doc.type.value,
        "id": doc.id,
        "platform": doc.platform,
        "name": doc.name,
        "latitude": doc.latitude,
        "longitude": doc.longitude,
    }


def from_source(source: dict[str, Any]) -> SearchDoc:
    fields = dict(source)
    kind = SearchType(fields.pop("type"))
    if kind is SearchType.USER:
        return UserDoc(**fields)
    if kind in (SearchType.POST, SearchType.TAKE):
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
        fields["hashtags"] = tuple(fields["hashtags"])
        return (PostDoc if kind is SearchType.POST else TakeDoc)(**fields)
    if kind is SearchType.HASHTAG:
        return HashtagDoc(**fields)
    return LocationDoc(**fields)


# ── ranking in Python (Tantivy) and the cursor ─────────────────────────


def boost_factor(
    popularity: int,
    created_at_us: int | None,
    owner_id: int | None,
    now_us: int,
    followed: frozenset[int],
) -> float:
    """popularity × recency × follow: the factor the relevance is multiplied by."""
    factor = 1.0 + POPULARITY_WEIGHT * math.log1p(max(popularity, 0))
    if created_at_us is not None:
        age = abs(now_us - created_at_us) / (RECENCY_HALF_LIFE.total_seconds() * 1e6)
        factor *= 1.0 + RECENCY_WEIGHT * 0.5**age
    if owner_id is not None and owner_id in followed:
        factor *= FOLLOWED_BOOST
    return factor


def micros(moment: datetime) -> int:
    moment = utc(moment)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on a sphere of the mean Earth radius (what ES's `arc` uses)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


class BadCursor(ValueError):
    pass


def encode_cursor(score: float, tie: str | int, now_us: int) -> str:
    raw = json.dumps({"s": score, "t": tie, "n": now_us}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str | int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        return float(data["s"]), data["t"], int(data["n"])
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise BadCursor(f"not a search cursor: {cursor!r}") from error


def tie_breaker(key: str) -> int:
    """A stable signed 64-bit number per document key (Tantivy's fast-field tie-break)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def prefix_words(prefix: str) -> list[str]:
    return words(prefix)


def _has_prefix_words(text: str | None, tokens: list[str]) -> bool:
    present = words(text)
    *whole, last = tokens
    return all(token in present for token in whole) and any(w.startswith(last) for w in present)


def suggestion_text(doc: SearchDoc, tokens: list[str]) -> str:
    """What a suggestion shows: the username, or the display name when only it matched."""
    if isinstance(doc, UserDoc):
        if doc.display_name and not _has_prefix_words(doc.username, tokens):
            return doc.display_name
        return doc.username
    if isinstance(doc, HashtagDoc | LocationDoc):
        return doc.name
    return doc.caption or ""


def suggestion_order(boosted: bool, popularity: int, text: str, key: str) -> tuple:
    return (not boosted, -popularity, len(text), key)
