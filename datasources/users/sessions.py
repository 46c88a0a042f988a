"""SQL for refresh tokens (stored as hashes). The rules live in resolvers/users/sessions.py."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import aliased

from datasources.sql import Database, utcnow
from datasources.users.tables import RefreshTokenRow


@dataclass(frozen=True)
class RefreshTokenRecord:
    id: str  # sha256 of the token
    family_id: str
    user_id: int
    platform: str
    expires_at: datetime
    used_at: datetime | None
    revoked: bool  # this token, or any token of its family, was revoked


class SessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self, token_id: str, family_id: str, user_id: int, platform: str, expires_at: datetime
    ) -> None:
        async with self.db.transaction() as session:
            session.add(_row(token_id, family_id, user_id, platform, expires_at))

    async def find(self, platform: str, token_id: str) -> RefreshTokenRecord | None:
        """The token on this platform; a token of another platform is not found."""
        sibling = aliased(RefreshTokenRow)
        family_revoked = exists().where(
            sibling.family_id == RefreshTokenRow.family_id, sibling.revoked_at.is_not(None)
        )
        query = select(RefreshTokenRow, family_revoked).where(
            RefreshTokenRow.platform == platform, RefreshTokenRow.id == token_id
        )
        async with self.db.session() as session:
            found = (await session.execute(query)).first()
        if found is None:
            return None
        row, revoked = found
        return RefreshTokenRecord(
            id=row.id,
            family_id=row.family_id,
            user_id=row.user_id,
            platform=row.platform,
            expires_at=row.expires_at,
            used_at=row.used_at,
            revoked=bool(revoked) or row.revoked_at is not None,
        )

    async def rotate(
        self, used: RefreshTokenRecord, new_token_id: str, expires_at: datetime
    ) -> bool:
        """Mark `used` as used and add its successor, in one transaction.

        The UPDATE only matches while the token is unused and unrevoked, so of two
        concurrent rotations exactly one wins; False tells the loser.
        """
        now = utcnow()
        async with self.db.transaction() as session:
            result = await session.execute(
                update(RefreshTokenRow)
                .where(
                    and_(
                        RefreshTokenRow.id == used.id,
                        RefreshTokenRow.platform == used.platform,
                        RefreshTokenRow.used_at.is_(None),
                        RefreshTokenRow.revoked_at.is_(None),
                        RefreshTokenRow.expires_at > now,
                    )
                )
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
            session.add(_row(new_token_id, used.family_id, used.user_id, used.platform, expires_at))
        return True

    async def family_revoked(self, platform: str, family_id: str) -> bool:
        """Whether any refresh token of the family was revoked: the durable answer the
        server asks while the cache that normally answers is unreachable."""
        query = select(RefreshTokenRow.id).where(
            RefreshTokenRow.platform == platform,
            RefreshTokenRow.family_id == family_id,
            RefreshTokenRow.revoked_at.is_not(None),
        )
        async with self.db.session() as session:
            return (await session.execute(query.limit(1))).first() is not None

    async def revoke_family(self, platform: str, family_id: str) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(RefreshTokenRow)
                .where(
                    RefreshTokenRow.platform == platform,
                    RefreshTokenRow.family_id == family_id,
                    RefreshTokenRow.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
                .execution_options(synchronize_session=False)
            )


def _row(
    token_id: str, family_id: str, user_id: int, platform: str, expires_at: datetime
) -> RefreshTokenRow:
    return RefreshTokenRow(
        id=token_id,
        family_id=family_id,
        user_id=user_id,
        platform=platform,
        created_at=utcnow(),
        expires_at=expires_at,
    )
