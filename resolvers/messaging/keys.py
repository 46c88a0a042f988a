"""The key directory (Signal-style devices and prekeys, MLS key packages): its rules.

Devices. A user's devices share one identity key. The first registration is
the primary, device 1. Registering with the stored identity key links one more
device (the lowest free id; at most MAX_DEVICES). Registering with a DIFFERENT
identity key is how the API expresses "re-register the primary": the new device
becomes device 1 with the new identity, and every other device (with its keys,
queue and key packages) is removed, since none of them can prove the new
identity. Removing device 1 removes every device and the identity key.

Keys. Every signed prekey and KEM prekey is verified (XEdDSA, signatures.py)
over the exact public-key bytes uploaded, before anything is stored; any bad
input is BAD_USER_INPUT and stores nothing. Key ids are 24-bit (1..2^24-1, as
Signal's), registration ids 1..16383.

Claims. claimPreKeyBundles hands out one bundle per device of the target, each
with one one-time prekey taken atomically (datasources/messaging/keys.py), and
is rate limited per claimer AND target (on top of the per-user limit of the
`key_claims` operation class, server/ratelimit.py; `key_claims_per_target` in
settings, 6 per 10 minutes by default), since every claim drains a
victim's keys. A target who does not exist on this platform, or with a block
either way, is NOT_FOUND: a claim cannot tell a block from a missing user.

Only the owner manages their devices: every device argument is looked up among
the viewer's own devices, so someone else's device is simply not found.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from datasources.messaging.keys import (
    BundleRecord,
    ClaimedPackage,
    DeviceLimitReached,
    DeviceRecord,
    KeyUpload,
    NewDevice,
    OneTimeKey,
    PreKeyStatusRecord,
    SignedKey,
    TooManyStored,
)
from datasources.sql import utcnow
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict, NotFound, RateLimited
from resolvers.ids import decode_id
from resolvers.messaging.signatures import check_prekey, normalize_identity_key, require_signed
from resolvers.users.policy import facts, is_blocked
from server.ratelimit import Bucket, take

MAX_DEVICES = 6
MAX_REGISTRATION_ID = 16383
MAX_KEY_ID = 2**24 - 1
MAX_PREKEYS_PER_CALL = 100
MAX_STORED_PREKEYS = 1000
MAX_DEVICE_NAME = 64
MAX_KEY_PACKAGES_PER_DEVICE = 100
MAX_KEY_PACKAGE_SIZE = 64 * 1024
MAX_KEY_PACKAGE_USERS = 100


@dataclass(frozen=True)
class SignedKeyInput:
    key_id: int
    public_key: bytes
    signature: bytes


@dataclass(frozen=True)
class DeviceInput:
    """registerMessagingDevice's input as plain values."""

    registration_id: int
    identity_key: bytes
    signed_prekey: SignedKeyInput
    one_time_prekeys: Sequence[OneTimeKey]
    kem_prekey: SignedKeyInput | None = None
    name: str | None = None


# ── validation (before anything is stored) ──


def _key_id(key_id: int, field: str) -> int:
    if not 1 <= key_id <= MAX_KEY_ID:
        raise BadUserInput(f"a key id is between 1 and {MAX_KEY_ID}", field=field)
    return key_id


def _signed(identity_key: bytes, key: SignedKeyInput, field: str) -> SignedKey:
    _key_id(key.key_id, f"{field}.keyId")
    require_signed(identity_key, key.public_key, key.signature, field)
    return SignedKey(key.key_id, bytes(key.public_key), bytes(key.signature))


def _one_time(keys: Sequence[OneTimeKey]) -> list[OneTimeKey]:
    if len(keys) > MAX_PREKEYS_PER_CALL:
        raise BadUserInput(
            f"at most {MAX_PREKEYS_PER_CALL} one-time prekeys per call", field="oneTimePreKeys"
        )
    seen: set[int] = set()
    for key in keys:
        _key_id(key.key_id, "oneTimePreKeys.keyId")
        check_prekey(key.public_key, "oneTimePreKeys.publicKey")
        if key.key_id in seen:
            raise BadUserInput(f"key id {key.key_id} is given twice", field="oneTimePreKeys")
        seen.add(key.key_id)
    return [OneTimeKey(key.key_id, bytes(key.public_key)) for key in keys]


def _name(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.strip() or None
    if name is not None and len(name) > MAX_DEVICE_NAME:
        raise BadUserInput(f"name is longer than {MAX_DEVICE_NAME} characters", field="name")
    return name


def validate_device(given: DeviceInput) -> NewDevice:
    if not 1 <= given.registration_id <= MAX_REGISTRATION_ID:
        raise BadUserInput(
            f"registrationId is between 1 and {MAX_REGISTRATION_ID}", field="registrationId"
        )
    identity = normalize_identity_key(given.identity_key)
    kem = None if given.kem_prekey is None else _signed(identity, given.kem_prekey, "kemPreKey")
    return NewDevice(
        identity_key=identity,
        registration_id=given.registration_id,
        name=_name(given.name),
        signed_prekey=_signed(identity, given.signed_prekey, "signedPreKey"),
        kem_prekey=kem,
        one_time_prekeys=_one_time(given.one_time_prekeys),
    )


# ── devices ──


async def devices(context: Context) -> list[DeviceRecord]:
    viewer = context.require_viewer()
    return await context.stores.keys.devices(viewer.user_id)


async def register_device(context: Context, given: DeviceInput) -> DeviceRecord:
    viewer = context.require_viewer()
    device = validate_device(given)
    try:
        return await context.stores.keys.register(
            context.platform, viewer.user_id, device, MAX_DEVICES, utcnow()
        )
    except DeviceLimitReached:
        raise Conflict(
            f"at most {MAX_DEVICES} devices; remove one first", field="deviceId"
        ) from None


async def remove_device(context: Context, device_id: int) -> bool:
    """True when the viewer's device was removed; false when they have no such device."""
    viewer = context.require_viewer()
    return await context.stores.keys.remove_device(viewer.user_id, device_id)


# ── prekeys ──


async def upload_prekeys(
    context: Context,
    device_id: int,
    signed_prekey: SignedKeyInput | None,
    kem_prekey: SignedKeyInput | None,
    one_time_prekeys: Sequence[OneTimeKey],
) -> PreKeyStatusRecord:
    viewer = context.require_viewer()
    identity = await context.stores.keys.identity_key(viewer.user_id)
    if identity is None:
        raise NotFound("device")
    upload = KeyUpload(
        signed_prekey=None
        if signed_prekey is None
        else _signed(identity, signed_prekey, "signedPreKey"),
        kem_prekey=None if kem_prekey is None else _signed(identity, kem_prekey, "kemPreKey"),
        one_time_prekeys=_one_time(one_time_prekeys),
    )
    try:
        status = await context.stores.keys.upload(
            viewer.user_id, device_id, upload, MAX_STORED_PREKEYS
        )
    except TooManyStored:
        raise BadUserInput(
            f"a device holds at most {MAX_STORED_PREKEYS} one-time prekeys",
            field="oneTimePreKeys",
        ) from None
    if status is None:
        raise NotFound("device")
    return status


async def prekey_status(context: Context, device_id: int) -> PreKeyStatusRecord:
    viewer = context.require_viewer()
    status = await context.stores.keys.status(viewer.user_id, device_id)
    if status is None:
        raise NotFound("device")
    return status


async def _targets(context: Context, user_ids: Sequence[str], field: str) -> list[int]:
    """Users the viewer may fetch keys of: on this platform, no block either way
    (one batched load of the users and of their relationships with the viewer)."""
    context.require_viewer()
    pks = [decode_id(user_id, "User", field) for user_id in user_ids]
    users = await context.loaders.users.by_id.load_many(pks)
    found = [user for user in users if user is not None]
    if len(found) < len(users):
        raise NotFound("user")
    checked = await asyncio.gather(*(facts(context, user) for user in found))
    if any(is_blocked(fact) for fact in checked):
        raise NotFound("user")
    return list(dict.fromkeys(pks))


async def _limit_claims(
    context: Context, kind: str, claimer_id: int, target_ids: Sequence[int]
) -> None:
    """RATE_LIMITED when the claimer claimed any target's `kind` of keys too often
    (a token is taken from every target's bucket, or from none)."""
    limits = context.settings.rate_limits
    if not limits.enabled:
        return
    per_target = limits.key_claims_per_target
    costs = [
        (Bucket.of(f"rate:{kind}:{claimer_id}:{target}", per_target), 1)
        for target in target_ids
        if target != claimer_id
    ]
    if not costs:
        return
    waited = await take(context.stores.cache, costs)
    if waited:
        raise RateLimited(max(1, math.ceil(waited)))


async def claim_bundles(context: Context, user_id: str) -> list[BundleRecord]:
    viewer = context.require_viewer()
    (target,) = await _targets(context, [user_id], "userId")
    await _limit_claims(context, "prekey-claims", viewer.user_id, [target])
    return await context.stores.keys.claim_bundles(target)


# ── MLS key packages ──


async def publish_key_packages(
    context: Context, device_id: int, packages: Sequence[bytes], last_resort: bytes | None
) -> int:
    """The device's count of one-time key packages after the publish."""
    viewer = context.require_viewer()
    if len(packages) > MAX_KEY_PACKAGES_PER_DEVICE:
        raise BadUserInput(
            f"at most {MAX_KEY_PACKAGES_PER_DEVICE} key packages", field="keyPackages"
        )
    for package in [*packages, *([last_resort] if last_resort is not None else [])]:
        if not 0 < len(package) <= MAX_KEY_PACKAGE_SIZE:
            raise BadUserInput(
                f"a key package is 1 to {MAX_KEY_PACKAGE_SIZE} bytes", field="keyPackages"
            )
    try:
        count = await context.stores.keys.publish_key_packages(
            viewer.user_id,
            device_id,
            [bytes(p) for p in packages],
            None if last_resort is None else bytes(last_resort),
            MAX_KEY_PACKAGES_PER_DEVICE,
            utcnow(),
        )
    except TooManyStored:
        raise BadUserInput(
            f"a device holds at most {MAX_KEY_PACKAGES_PER_DEVICE} key packages",
            field="keyPackages",
        ) from None
    if count is None:
        raise NotFound("device")
    return count


async def claim_key_packages(context: Context, user_ids: Sequence[str]) -> list[ClaimedPackage]:
    viewer = context.require_viewer()
    if not user_ids:
        return []
    if len(user_ids) > MAX_KEY_PACKAGE_USERS:
        raise BadUserInput(f"at most {MAX_KEY_PACKAGE_USERS} users at once", field="userIds")
    targets = await _targets(context, user_ids, "userIds")
    await _limit_claims(context, "key-package-claims", viewer.user_id, targets)
    return await context.stores.keys.claim_key_packages(targets)
