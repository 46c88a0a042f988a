"""The key directory's SQL: devices, identity keys, prekeys and MLS key packages.

Rules (limits, signatures, who may ask) are the resolvers'
(resolvers/messaging/keys.py); this module makes their outcome atomic:

- A registration starts by touching the user's identity row (`UPDATE … RETURNING`):
  on PostgreSQL that locks it, on SQLite it takes the write lock, so concurrent
  registrations of one user serialize and the device limit and the next device
  id are read consistently. Two concurrent *first* registrations both insert the
  identity: the loser's primary-key conflict retries once, as a linked device.
- A claim deletes what it hands out with `DELETE … WHERE key = (SELECT … LIMIT 1
  FOR UPDATE SKIP LOCKED) RETURNING …`: two concurrent claimers lock different
  rows (PostgreSQL) or run one after the other (SQLite's single writer), so no
  one-time prekey or key package is ever handed out twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.messaging.key_tables import KeyPackageRow, OneTimePreKeyRow
from datasources.messaging.tables import MessagingDeviceRow, MessagingIdentityRow
from datasources.sql import Database

PRIMARY_DEVICE_ID = 1


@dataclass(frozen=True)
class SignedKey:
    key_id: int
    public_key: bytes
    signature: bytes


@dataclass(frozen=True)
class OneTimeKey:
    key_id: int
    public_key: bytes


@dataclass(frozen=True)
class DeviceRecord:
    user_id: int
    device_id: int
    registration_id: int
    name: str | None
    created_at: datetime
    last_seen_at: datetime | None


@dataclass(frozen=True)
class NewDevice:
    """A device to register, validated and with its signatures verified."""

    identity_key: bytes  # normalized (33 bytes)
    registration_id: int
    name: str | None
    signed_prekey: SignedKey
    kem_prekey: SignedKey | None
    one_time_prekeys: Sequence[OneTimeKey]


@dataclass(frozen=True)
class KeyUpload:
    signed_prekey: SignedKey | None
    kem_prekey: SignedKey | None
    one_time_prekeys: Sequence[OneTimeKey]


@dataclass(frozen=True)
class PreKeyStatusRecord:
    device_id: int
    one_time_prekey_count: int
    signed_prekey_id: int
    kem_prekey_id: int | None


@dataclass(frozen=True)
class BundleRecord:
    user_id: int
    device_id: int
    registration_id: int
    identity_key: bytes
    signed_prekey: SignedKey
    one_time_prekey: OneTimeKey | None
    kem_prekey: SignedKey | None


@dataclass(frozen=True)
class ClaimedPackage:
    user_id: int
    device_id: int
    key_package: bytes


class DeviceLimitReached(Exception):
    """The user already has the most devices allowed."""


class TooManyStored(Exception):
    """The upload would keep more one-time keys or packages than a device may hold."""


def device_record(row: MessagingDeviceRow) -> DeviceRecord:
    return DeviceRecord(
        user_id=row.user_id,
        device_id=row.device_id,
        registration_id=row.registration_id,
        name=row.name,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
    )


def _device(user_id: int, device_id: int) -> list[ColumnElement[bool]]:
    return [MessagingDeviceRow.user_id == user_id, MessagingDeviceRow.device_id == device_id]


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ── devices ──

    async def identity_key(self, user_id: int) -> bytes | None:
        async with self.db.session() as session:
            return await session.scalar(
                select(MessagingIdentityRow.identity_key).where(
                    MessagingIdentityRow.user_id == user_id
                )
            )

    async def devices(self, user_id: int) -> list[DeviceRecord]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(MessagingDeviceRow)
                .where(MessagingDeviceRow.user_id == user_id)
                .order_by(MessagingDeviceRow.device_id)
            )
            return [device_record(row) for row in rows]

    async def register(
        self, platform: str, user_id: int, device: NewDevice, max_devices: int, now: datetime
    ) -> DeviceRecord:
        """Store `device` as the user's next device, or as the new primary (id 1, every
        other device removed) when its identity key is not the stored one."""
        for attempt in range(2):
            try:
                async with self.db.transaction() as session:
                    return await self._register(
                        session, platform, user_id, device, max_devices, now
                    )
            except IntegrityError:  # a concurrent first registration inserted the identity
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _register(
        self,
        session: AsyncSession,
        platform: str,
        user_id: int,
        device: NewDevice,
        max_devices: int,
        now: datetime,
    ) -> DeviceRecord:
        stored = await session.scalar(
            update(MessagingIdentityRow)
            .where(MessagingIdentityRow.user_id == user_id)
            .values(updated_at=now)
            .returning(MessagingIdentityRow.identity_key)
        )
        if stored is None:
            session.add(
                MessagingIdentityRow(
                    user_id=user_id, identity_key=device.identity_key, updated_at=now
                )
            )
            await session.flush()
            device_id = PRIMARY_DEVICE_ID
        elif stored != device.identity_key:
            # A new identity key: a new primary. The old devices' keys, queues and
            # key packages go with them (ON DELETE CASCADE).
            await session.execute(
                delete(MessagingDeviceRow).where(MessagingDeviceRow.user_id == user_id)
            )
            await session.execute(
                update(MessagingIdentityRow)
                .where(MessagingIdentityRow.user_id == user_id)
                .values(identity_key=device.identity_key)
            )
            device_id = PRIMARY_DEVICE_ID
        else:
            taken = set(
                await session.scalars(
                    select(MessagingDeviceRow.device_id).where(
                        MessagingDeviceRow.user_id == user_id
                    )
                )
            )
            if len(taken) >= max_devices:
                raise DeviceLimitReached()
            # The lowest free id: a removed device's id may come back, with a new
            # registration id, which is how peers tell it is not the old device
            # (the relay's STALE_DEVICES).
            device_id = min(set(range(PRIMARY_DEVICE_ID + 1, max_devices + 2)) - taken)
        row = MessagingDeviceRow(
            user_id=user_id,
            device_id=device_id,
            platform=platform,
            registration_id=device.registration_id,
            name=device.name,
            created_at=now,
            last_seen_at=now,
            signed_prekey_id=device.signed_prekey.key_id,
            signed_prekey=device.signed_prekey.public_key,
            signed_prekey_signature=device.signed_prekey.signature,
            kem_prekey_id=device.kem_prekey.key_id if device.kem_prekey else None,
            kem_prekey=device.kem_prekey.public_key if device.kem_prekey else None,
            kem_prekey_signature=device.kem_prekey.signature if device.kem_prekey else None,
            last_sequence=0,
        )
        session.add(row)
        await session.flush()
        await _put_one_time_keys(session, user_id, device_id, device.one_time_prekeys)
        return device_record(row)

    async def remove_device(self, user_id: int, device_id: int) -> bool:
        """Remove one device; removing the primary removes every device and the
        identity key (the user starts over with a new primary)."""
        async with self.db.transaction() as session:
            if device_id == PRIMARY_DEVICE_ID:
                result = await session.execute(
                    delete(MessagingIdentityRow).where(MessagingIdentityRow.user_id == user_id)
                )
                await session.execute(
                    delete(MessagingDeviceRow).where(MessagingDeviceRow.user_id == user_id)
                )
                return bool(result.rowcount)  # type: ignore[attr-defined]
            result = await session.execute(
                delete(MessagingDeviceRow).where(*_device(user_id, device_id))
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # ── prekeys ──

    async def upload(
        self, user_id: int, device_id: int, keys: KeyUpload, max_stored: int
    ) -> PreKeyStatusRecord | None:
        """Store new keys of the device; None when it is not one of the user's."""
        async with self.db.transaction() as session:
            changes: dict[str, object] = {}
            if keys.signed_prekey is not None:
                changes.update(
                    signed_prekey_id=keys.signed_prekey.key_id,
                    signed_prekey=keys.signed_prekey.public_key,
                    signed_prekey_signature=keys.signed_prekey.signature,
                )
            if keys.kem_prekey is not None:
                changes.update(
                    kem_prekey_id=keys.kem_prekey.key_id,
                    kem_prekey=keys.kem_prekey.public_key,
                    kem_prekey_signature=keys.kem_prekey.signature,
                )
            # Touching the row first locks the device (and SQLite's writer lock).
            found = await session.scalar(
                update(MessagingDeviceRow)
                .where(*_device(user_id, device_id))
                .values(**changes, registration_id=MessagingDeviceRow.registration_id)
                .returning(MessagingDeviceRow.device_id)
            )
            if found is None:
                return None
            await _put_one_time_keys(session, user_id, device_id, keys.one_time_prekeys)
            status = await _status(session, user_id, device_id)
            if status is not None and status.one_time_prekey_count > max_stored:
                raise TooManyStored()  # rolls the whole upload back
            return status

    async def status(self, user_id: int, device_id: int) -> PreKeyStatusRecord | None:
        async with self.db.session() as session:
            return await _status(session, user_id, device_id)

    async def claim_bundles(self, user_id: int) -> list[BundleRecord]:
        """One bundle per device of the user, each with one of its one-time prekeys
        (deleted: handed out once), or none when the device has run out."""
        async with self.db.transaction() as session:
            device_ids = list(
                await session.scalars(
                    select(MessagingDeviceRow.device_id)
                    .where(MessagingDeviceRow.user_id == user_id)
                    .order_by(MessagingDeviceRow.device_id)
                )
            )
            taken: dict[int, OneTimeKey] = {}
            for device_id in device_ids:
                key = await _take_one_time_key(session, user_id, device_id)
                if key is not None:
                    taken[device_id] = key
            identity = await session.scalar(
                select(MessagingIdentityRow.identity_key).where(
                    MessagingIdentityRow.user_id == user_id
                )
            )
            rows = await session.scalars(
                select(MessagingDeviceRow)
                .where(MessagingDeviceRow.user_id == user_id)
                .order_by(MessagingDeviceRow.device_id)
            )
            if identity is None:
                return []
            return [_bundle(row, identity, taken.get(row.device_id)) for row in rows]

    # ── MLS key packages ──

    async def publish_key_packages(
        self,
        user_id: int,
        device_id: int,
        packages: Sequence[bytes],
        last_resort: bytes | None,
        max_stored: int,
        now: datetime,
    ) -> int | None:
        """Store one-time packages (and replace the last-resort one when given); the
        device's count of one-time packages, or None when it is not the user's."""
        async with self.db.transaction() as session:
            found = await session.scalar(
                update(MessagingDeviceRow)
                .where(*_device(user_id, device_id))
                .values(registration_id=MessagingDeviceRow.registration_id)
                .returning(MessagingDeviceRow.device_id)
            )
            if found is None:
                return None
            if last_resort is not None:
                await session.execute(
                    delete(KeyPackageRow).where(
                        KeyPackageRow.user_id == user_id,
                        KeyPackageRow.device_id == device_id,
                        KeyPackageRow.last_resort.is_(True),
                    )
                )
            rows = [
                KeyPackageRow(
                    user_id=user_id,
                    device_id=device_id,
                    key_package=package,
                    last_resort=False,
                    created_at=now,
                )
                for package in packages
            ]
            if last_resort is not None:
                rows.append(
                    KeyPackageRow(
                        user_id=user_id,
                        device_id=device_id,
                        key_package=last_resort,
                        last_resort=True,
                        created_at=now,
                    )
                )
            session.add_all(rows)
            await session.flush()
            count = await _package_count(session, user_id, device_id)
            if count > max_stored:
                raise TooManyStored()
            return count

    async def key_package_count(self, user_id: int, device_id: int) -> int:
        async with self.db.session() as session:
            return await _package_count(session, user_id, device_id)

    async def claim_key_packages(self, user_ids: Sequence[int]) -> list[ClaimedPackage]:
        """One package per device of each user: a one-time one (deleted), else the
        device's last-resort package (kept); a device with neither is left out."""
        async with self.db.transaction() as session:
            devices = (
                await session.execute(
                    select(MessagingDeviceRow.user_id, MessagingDeviceRow.device_id)
                    .where(MessagingDeviceRow.user_id.in_(list(user_ids)))
                    .order_by(MessagingDeviceRow.user_id, MessagingDeviceRow.device_id)
                )
            ).all()
            claimed: list[ClaimedPackage] = []
            for user_id, device_id in devices:
                package = await _take_key_package(session, user_id, device_id)
                if package is not None:
                    claimed.append(ClaimedPackage(user_id, device_id, package))
            return claimed


async def _put_one_time_keys(
    session: AsyncSession, user_id: int, device_id: int, keys: Sequence[OneTimeKey]
) -> None:
    """Store `keys`; a key id the device already has is replaced by the new key."""
    if not keys:
        return
    await session.execute(
        delete(OneTimePreKeyRow).where(
            OneTimePreKeyRow.user_id == user_id,
            OneTimePreKeyRow.device_id == device_id,
            OneTimePreKeyRow.key_id.in_([key.key_id for key in keys]),
        )
    )
    session.add_all(
        OneTimePreKeyRow(
            user_id=user_id, device_id=device_id, key_id=key.key_id, public_key=key.public_key
        )
        for key in keys
    )
    await session.flush()


async def _status(session: AsyncSession, user_id: int, device_id: int) -> PreKeyStatusRecord | None:
    device = (
        await session.execute(
            select(MessagingDeviceRow.signed_prekey_id, MessagingDeviceRow.kem_prekey_id).where(
                *_device(user_id, device_id)
            )
        )
    ).first()
    if device is None:
        return None
    count = await session.scalar(
        select(func.count()).where(
            OneTimePreKeyRow.user_id == user_id, OneTimePreKeyRow.device_id == device_id
        )
    )
    return PreKeyStatusRecord(device_id, count or 0, device[0], device[1])


async def _package_count(session: AsyncSession, user_id: int, device_id: int) -> int:
    count = await session.scalar(
        select(func.count()).where(
            KeyPackageRow.user_id == user_id,
            KeyPackageRow.device_id == device_id,
            KeyPackageRow.last_resort.is_(False),
        )
    )
    return count or 0


async def _take_one_time_key(
    session: AsyncSession, user_id: int, device_id: int
) -> OneTimeKey | None:
    K = OneTimePreKeyRow
    lowest = (
        select(K.key_id)
        .where(K.user_id == user_id, K.device_id == device_id)
        .order_by(K.key_id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    row = (
        await session.execute(
            delete(K)
            .where(K.user_id == user_id, K.device_id == device_id, K.key_id == lowest)
            .returning(K.key_id, K.public_key)
        )
    ).first()
    return None if row is None else OneTimeKey(row[0], row[1])


async def _take_key_package(session: AsyncSession, user_id: int, device_id: int) -> bytes | None:
    P = KeyPackageRow
    oldest = (
        select(P.id)
        .where(P.user_id == user_id, P.device_id == device_id, P.last_resort.is_(False))
        .order_by(P.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    taken = await session.scalar(delete(P).where(P.id == oldest).returning(P.key_package))
    if taken is not None:
        return taken
    return await session.scalar(
        select(P.key_package)
        .where(P.user_id == user_id, P.device_id == device_id, P.last_resort.is_(True))
        .limit(1)
    )


def _bundle(row: MessagingDeviceRow, identity: bytes, one_time: OneTimeKey | None) -> BundleRecord:
    kem = None
    if row.kem_prekey_id is not None and row.kem_prekey is not None:
        kem = SignedKey(row.kem_prekey_id, row.kem_prekey, row.kem_prekey_signature or b"")
    return BundleRecord(
        user_id=row.user_id,
        device_id=row.device_id,
        registration_id=row.registration_id,
        identity_key=identity,
        signed_prekey=SignedKey(
            row.signed_prekey_id, row.signed_prekey, row.signed_prekey_signature
        ),
        one_time_prekey=one_time,
        kem_prekey=kem,
    )
