"""GraphQL of the key directory: devices, prekeys, bundles, MLS key packages.

Thin: every rule is in resolvers/messaging/keys.py. Byte fields are `Base64`
(decoded by the scalar, so a malformed value never reaches a resolver).
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from datasources.messaging.keys import (
    BundleRecord,
    ClaimedPackage,
    DeviceRecord,
    OneTimeKey,
    PreKeyStatusRecord,
    SignedKey,
)
from resolvers.ids import encode_id
from resolvers.messaging import keys
from resolvers.messaging.keys import DeviceInput, SignedKeyInput
from schema.common import Base64, given


@strawberry.type
class MessagingDevice:
    device_id: int
    registration_id: int
    name: str | None
    created_at: datetime
    last_seen_at: datetime | None

    @classmethod
    def of(cls, record: DeviceRecord) -> MessagingDevice:
        return cls(
            device_id=record.device_id,
            registration_id=record.registration_id,
            name=record.name,
            created_at=record.created_at,
            last_seen_at=record.last_seen_at,
        )


@strawberry.type
class SignedPreKey:
    key_id: int
    public_key: Base64
    signature: Base64

    @classmethod
    def of(cls, key: SignedKey) -> SignedPreKey:
        return cls(
            key_id=key.key_id, public_key=Base64(key.public_key), signature=Base64(key.signature)
        )


@strawberry.type
class OneTimePreKey:
    key_id: int
    public_key: Base64


@strawberry.type
class PreKeyBundle:
    user_id: strawberry.ID
    device_id: int
    registration_id: int
    identity_key: Base64
    signed_pre_key: SignedPreKey
    one_time_pre_key: OneTimePreKey | None = strawberry.field(
        description="null when the device has run out of one-time prekeys"
    )
    kem_pre_key: SignedPreKey | None = strawberry.field(
        description="post-quantum last-resort key, when the device uploaded one"
    )

    @classmethod
    def of(cls, bundle: BundleRecord) -> PreKeyBundle:
        one_time = bundle.one_time_prekey
        return cls(
            user_id=strawberry.ID(encode_id("User", bundle.user_id)),
            device_id=bundle.device_id,
            registration_id=bundle.registration_id,
            identity_key=Base64(bundle.identity_key),
            signed_pre_key=SignedPreKey.of(bundle.signed_prekey),
            one_time_pre_key=None
            if one_time is None
            else OneTimePreKey(key_id=one_time.key_id, public_key=Base64(one_time.public_key)),
            kem_pre_key=None if bundle.kem_prekey is None else SignedPreKey.of(bundle.kem_prekey),
        )


@strawberry.type
class PreKeyStatus:
    device_id: int
    one_time_pre_key_count: int
    signed_pre_key_id: int
    kem_pre_key_id: int | None

    @classmethod
    def of(cls, status: PreKeyStatusRecord) -> PreKeyStatus:
        return cls(
            device_id=status.device_id,
            one_time_pre_key_count=status.one_time_prekey_count,
            signed_pre_key_id=status.signed_prekey_id,
            kem_pre_key_id=status.kem_prekey_id,
        )


@strawberry.type
class ClaimedKeyPackage:
    user_id: strawberry.ID
    device_id: int
    key_package: Base64

    @classmethod
    def of(cls, claimed: ClaimedPackage) -> ClaimedKeyPackage:
        return cls(
            user_id=strawberry.ID(encode_id("User", claimed.user_id)),
            device_id=claimed.device_id,
            key_package=Base64(claimed.key_package),
        )


@strawberry.input
class SignedPreKeyInput:
    key_id: int
    public_key: Base64
    signature: Base64

    def plain(self) -> SignedKeyInput:
        return SignedKeyInput(self.key_id, bytes(self.public_key), bytes(self.signature))


@strawberry.input
class OneTimePreKeyInput:
    key_id: int
    public_key: Base64


def _one_time(keys_given: list[OneTimePreKeyInput]) -> list[OneTimeKey]:
    return [OneTimeKey(key.key_id, bytes(key.public_key)) for key in keys_given]


def _signed(key: SignedPreKeyInput | None) -> SignedKeyInput | None:
    return None if key is None else key.plain()


@strawberry.input
class RegisterMessagingDeviceInput:
    name: str | None = strawberry.UNSET
    registration_id: int
    identity_key: Base64
    signed_pre_key: SignedPreKeyInput
    one_time_pre_keys: list[OneTimePreKeyInput]
    kem_pre_key: SignedPreKeyInput | None = strawberry.UNSET


@strawberry.input
class UploadPreKeysInput:
    device_id: int
    signed_pre_key: SignedPreKeyInput | None = strawberry.UNSET
    one_time_pre_keys: list[OneTimePreKeyInput] = strawberry.field(default_factory=list)
    kem_pre_key: SignedPreKeyInput | None = strawberry.UNSET


CLAIM_BUNDLES_DESCRIPTION = (
    "one bundle per device of the user; consumes one one-time prekey of each"
)


@strawberry.type
class KeysQuery:
    @strawberry.field
    async def messaging_devices(self, info: Info) -> list[MessagingDevice]:
        return [MessagingDevice.of(d) for d in await keys.devices(info.context)]

    @strawberry.field
    async def pre_key_status(self, info: Info, device_id: int) -> PreKeyStatus:
        return PreKeyStatus.of(await keys.prekey_status(info.context, device_id))


@strawberry.type
class KeysMutation:
    @strawberry.mutation
    async def register_messaging_device(
        self, info: Info, input: RegisterMessagingDeviceInput
    ) -> MessagingDevice:
        device = DeviceInput(
            registration_id=input.registration_id,
            identity_key=bytes(input.identity_key),
            signed_prekey=input.signed_pre_key.plain(),
            one_time_prekeys=_one_time(input.one_time_pre_keys),
            kem_prekey=_signed(given(input.kem_pre_key)),
            name=given(input.name),
        )
        return MessagingDevice.of(await keys.register_device(info.context, device))

    @strawberry.mutation
    async def remove_messaging_device(self, info: Info, device_id: int) -> bool:
        return await keys.remove_device(info.context, device_id)

    @strawberry.mutation
    async def upload_pre_keys(self, info: Info, input: UploadPreKeysInput) -> PreKeyStatus:
        status = await keys.upload_prekeys(
            info.context,
            input.device_id,
            _signed(given(input.signed_pre_key)),
            _signed(given(input.kem_pre_key)),
            _one_time(input.one_time_pre_keys),
        )
        return PreKeyStatus.of(status)

    @strawberry.mutation(
        description="one bundle per device of the user; consumes one one-time prekey of each"
    )
    async def claim_pre_key_bundles(self, info: Info, user_id: strawberry.ID) -> list[PreKeyBundle]:
        return [PreKeyBundle.of(b) for b in await keys.claim_bundles(info.context, user_id)]

    @strawberry.mutation
    async def publish_key_packages(
        self,
        info: Info,
        device_id: int,
        key_packages: list[Base64],
        last_resort: Base64 | None = strawberry.UNSET,
    ) -> int:
        return await keys.publish_key_packages(
            info.context, device_id, [bytes(p) for p in key_packages], given(last_resort)
        )

    @strawberry.mutation
    async def claim_key_packages(
        self, info: Info, user_ids: list[strawberry.ID]
    ) -> list[ClaimedKeyPackage]:
        claimed = await keys.claim_key_packages(info.context, [str(u) for u in user_ids])
        return [ClaimedKeyPackage.of(c) for c in claimed]
