"""The key directory: devices, signed/KEM/one-time prekeys, bundles, MLS key packages.

Every test runs on SQLite and PostgreSQL (the `gql` / `app` fixtures). Keys are
real (tests/messaging_support.py): XEdDSA signatures by a Curve25519 identity
key, ML-KEM-1024 last-resort keys.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from datasources.messaging.key_tables import KeyPackageRow, OneTimePreKeyRow
from datasources.messaging.tables import MessagingDeviceRow, MessagingIdentityRow
from tests.conftest import Account, GraphQLClient, create_users, sign_up
from tests.messaging_support import (
    REGISTER,
    KeyPair,
    b64,
    claim_bundles,
    device_input,
    kem_prekey,
    one_time_inputs,
    one_time_prekeys,
    register_device,
    signed_prekey,
    unb64,
    verify_bundle,
)

DEVICES = "{ messagingDevices { deviceId registrationId name createdAt lastSeenAt } }"
STATUS = """
query($deviceId: Int!) {
  preKeyStatus(deviceId: $deviceId) { deviceId oneTimePreKeyCount signedPreKeyId kemPreKeyId }
}
"""
UPLOAD = """
mutation($input: UploadPreKeysInput!) {
  uploadPreKeys(input: $input) { deviceId oneTimePreKeyCount signedPreKeyId kemPreKeyId }
}
"""
REMOVE = "mutation($deviceId: Int!) { removeMessagingDevice(deviceId: $deviceId) }"
PUBLISH = """
mutation($deviceId: Int!, $keyPackages: [Base64!]!, $lastResort: Base64) {
  publishKeyPackages(deviceId: $deviceId, keyPackages: $keyPackages, lastResort: $lastResort)
}
"""
CLAIM_PACKAGES = """
mutation($userIds: [ID!]!) { claimKeyPackages(userIds: $userIds) { userId deviceId keyPackage } }
"""
BLOCK = "mutation($id: ID!) { block(userId: $id) { blocking } }"


async def count(app: Any, table: Any, **where: Any) -> int:
    async with app.state.runtime.stores.db.session() as session:
        stmt = select(func.count()).select_from(table)
        for name, value in where.items():
            stmt = stmt.where(getattr(table, name) == value)
        return int(await session.scalar(stmt) or 0)


def pk(account: Account) -> int:
    from resolvers.ids import decode_id

    return decode_id(account.id, "User")


async def devices(gql: GraphQLClient, token: str) -> list[dict[str, Any]]:
    result = await gql(DEVICES, token=token)
    return list(result.ok()["messagingDevices"])


# ── registration ──


async def test_first_device_is_the_primary_and_linked_devices_follow(
    gql: GraphQLClient, app: Any
) -> None:
    (alice,) = await create_users(app, ["alice"])
    primary = await register_device(gql, alice.token, device_name="phone", registration_id=77)
    assert (primary.device_id, primary.registration_id, primary.name) == (1, 77, "phone")
    linked = await register_device(gql, alice.token, identity=primary.identity)
    assert linked.device_id == 2
    listed = await devices(gql, alice.token)
    assert [d["deviceId"] for d in listed] == [1, 2]
    assert listed[0]["name"] == "phone" and listed[0]["createdAt"]
    assert await count(app, MessagingIdentityRow) == 1
    assert await count(app, OneTimePreKeyRow, user_id=pk(alice)) == 20


async def test_at_most_six_devices(gql: GraphQLClient, app: Any) -> None:
    (alice,) = await create_users(app, ["alice"])
    primary = await register_device(gql, alice.token, one_time_count=1)
    for _ in range(5):
        await register_device(gql, alice.token, identity=primary.identity, one_time_count=1)
    identity = primary.identity
    seventh = device_input(identity, 9, signed_prekey(identity), None, one_time_prekeys(3))
    result = await gql(REGISTER, {"input": seventh}, token=alice.token)
    assert result.codes == ["CONFLICT"]
    assert len(await devices(gql, alice.token)) == 6
    assert await count(app, OneTimePreKeyRow) == 6  # the refused device's keys were not kept


async def test_a_new_identity_key_is_a_new_primary_and_removes_the_other_devices(
    gql: GraphQLClient, app: Any
) -> None:
    (alice,) = await create_users(app, ["alice"])
    old = await register_device(gql, alice.token)
    await register_device(gql, alice.token, identity=old.identity)
    await register_device(gql, alice.token, identity=old.identity)
    new = await register_device(gql, alice.token)  # a new identity key
    assert new.device_id == 1
    assert [d["deviceId"] for d in await devices(gql, alice.token)] == [1]
    async with app.state.runtime.stores.db.session() as session:
        stored = await session.scalar(select(MessagingIdentityRow.identity_key))
    assert stored == new.identity.public
    assert await count(app, OneTimePreKeyRow) == 10  # only the new primary's


async def test_a_removed_linked_device_id_comes_back_with_a_new_registration_id(
    gql: GraphQLClient, app: Any
) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    primary = await register_device(gql, alice.token)
    await register_device(gql, alice.token, identity=primary.identity, registration_id=100)
    await register_device(gql, alice.token, identity=primary.identity)
    assert (await gql(REMOVE, {"deviceId": 2}, token=alice.token)).ok() == {
        "removeMessagingDevice": True
    }
    assert [d["deviceId"] for d in await devices(gql, alice.token)] == [1, 3]
    again = await register_device(gql, alice.token, identity=primary.identity, registration_id=200)
    assert again.device_id == 2
    bundles = {b["deviceId"]: b for b in await claim_bundles(gql, bob.token, alice.id)}
    assert bundles[2]["registrationId"] == 200


async def test_a_32_byte_identity_key_is_served_0x05_prefixed(gql: GraphQLClient, app: Any) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    identity = KeyPair.generate()
    value = device_input(identity, 5, signed_prekey(identity), None, one_time_prekeys(1))
    value["identityKey"] = b64(identity.raw_public)
    (await gql(REGISTER, {"input": value}, token=alice.token)).ok()
    # The same key in the other encoding is the same identity: a linked device.
    linked = await register_device(gql, alice.token, identity=identity)
    assert linked.device_id == 2
    (bundle, _) = await claim_bundles(gql, bob.token, alice.id)
    assert unb64(bundle["identityKey"]) == identity.public
    assert verify_bundle(bundle)


def tamper(signature: bytes) -> bytes:
    return bytes([signature[0] ^ 1]) + signature[1:]


@pytest.mark.parametrize(
    "case",
    [
        "spk-signature",
        "spk-signed-by-other",
        "spk-short-signature",
        "kem-signature",
        "kem-signed-other-bytes",
        "registration-id-0",
        "registration-id-16384",
        "identity-31-bytes",
        "identity-wrong-prefix",
        "key-id-0",
        "key-id-2^24",
        "duplicate-one-time",
        "101-one-time",
        "empty-prekey",
        "long-name",
    ],
)
async def test_bad_registration_is_refused_and_stores_nothing(
    gql: GraphQLClient, app: Any, case: str
) -> None:
    (alice,) = await create_users(app, ["alice"])
    identity = KeyPair.generate()
    spk = signed_prekey(identity)
    kem = kem_prekey(identity)
    value = device_input(identity, 42, spk, kem, one_time_prekeys(3))
    if case == "spk-signature":
        value["signedPreKey"]["signature"] = b64(tamper(spk.signature))
    elif case == "spk-signed-by-other":
        value["signedPreKey"] = signed_prekey(KeyPair.generate()).as_input()
    elif case == "spk-short-signature":
        value["signedPreKey"]["signature"] = b64(spk.signature[:63])
    elif case == "kem-signature":
        value["kemPreKey"]["signature"] = b64(tamper(kem.signature))
    elif case == "kem-signed-other-bytes":  # signed the raw key, uploaded it 0x08-prefixed
        value["kemPreKey"]["signature"] = b64(identity.sign(kem.public[1:]))
    elif case == "registration-id-0":
        value["registrationId"] = 0
    elif case == "registration-id-16384":
        value["registrationId"] = 16384
    elif case == "identity-31-bytes":
        value["identityKey"] = b64(identity.raw_public[:31])
    elif case == "identity-wrong-prefix":
        value["identityKey"] = b64(b"\x06" + identity.raw_public)
    elif case == "key-id-0":
        value["oneTimePreKeys"][0]["keyId"] = 0
    elif case == "key-id-2^24":
        value["signedPreKey"]["keyId"] = 2**24
    elif case == "duplicate-one-time":
        value["oneTimePreKeys"][1]["keyId"] = value["oneTimePreKeys"][0]["keyId"]
    elif case == "101-one-time":
        value["oneTimePreKeys"] = one_time_inputs(one_time_prekeys(101))
    elif case == "empty-prekey":
        value["oneTimePreKeys"][0]["publicKey"] = ""
    elif case == "long-name":
        value["name"] = "x" * 65
    result = await gql(REGISTER, {"input": value}, token=alice.token)
    assert result.codes == ["BAD_USER_INPUT"], result.errors
    for table in (MessagingIdentityRow, MessagingDeviceRow, OneTimePreKeyRow):
        assert await count(app, table) == 0


async def test_a_bad_signature_on_a_linked_device_keeps_the_existing_devices(
    gql: GraphQLClient, app: Any
) -> None:
    (alice,) = await create_users(app, ["alice"])
    primary = await register_device(gql, alice.token)
    value = device_input(
        primary.identity, 9, signed_prekey(KeyPair.generate()), None, one_time_prekeys(2)
    )
    result = await gql(REGISTER, {"input": value}, token=alice.token)
    assert result.codes == ["BAD_USER_INPUT"]
    assert [d["deviceId"] for d in await devices(gql, alice.token)] == [1]
    assert await count(app, OneTimePreKeyRow) == 10


# ── who may manage devices ──


async def test_only_the_owner_sees_and_manages_their_devices(gql: GraphQLClient, app: Any) -> None:
    alice, mallory = await create_users(app, ["alice", "mallory"])
    primary = await register_device(gql, alice.token)
    await register_device(gql, alice.token, identity=primary.identity)
    vignette_user = await sign_up(gql, "vic", platform="vignette")
    # Another user: sees only their own (none), cannot remove, upload or read status.
    assert await devices(gql, mallory.token) == []
    removed = await gql(REMOVE, {"deviceId": 2}, token=mallory.token)
    assert removed.ok() == {"removeMessagingDevice": False}
    upload = {"deviceId": 2, "oneTimePreKeys": one_time_inputs(one_time_prekeys(2, 500))}
    assert (await gql(UPLOAD, {"input": upload}, token=mallory.token)).codes == ["NOT_FOUND"]
    assert (await gql(STATUS, {"deviceId": 1}, token=mallory.token)).codes == ["NOT_FOUND"]
    published = await gql(
        PUBLISH, {"deviceId": 1, "keyPackages": [b64(b"kp")]}, token=mallory.token
    )
    assert published.codes == ["NOT_FOUND"]
    # Signed out, and a token of the other platform: unauthenticated.
    for token, platform in ((None, "socialink"), (alice.token, "vignette")):
        for query, variables in (
            (DEVICES, None),
            (REMOVE, {"deviceId": 2}),
            (STATUS, {"deviceId": 1}),
            (UPLOAD, {"input": upload}),
        ):
            result = await gql(query, variables, token=token, platform=platform)
            assert result.codes == ["UNAUTHENTICATED"], (query, platform)
    # The other platform's user has no devices of alice's either.
    result = await gql(DEVICES, token=vignette_user.token, platform="vignette")
    assert result.ok() == {"messagingDevices": []}
    # Nothing changed.
    assert [d["deviceId"] for d in await devices(gql, alice.token)] == [1, 2]
    assert await count(app, OneTimePreKeyRow) == 20
    assert await count(app, KeyPackageRow) == 0


async def test_removing_the_primary_removes_every_device_and_the_identity(
    gql: GraphQLClient, app: Any
) -> None:
    (alice,) = await create_users(app, ["alice"])
    primary = await register_device(gql, alice.token)
    await register_device(gql, alice.token, identity=primary.identity)
    assert (await gql(REMOVE, {"deviceId": 1}, token=alice.token)).ok()["removeMessagingDevice"]
    assert await devices(gql, alice.token) == []
    assert await count(app, MessagingIdentityRow) == 0
    assert await count(app, OneTimePreKeyRow) == 0
    assert not (await gql(REMOVE, {"deviceId": 1}, token=alice.token)).ok()["removeMessagingDevice"]
    again = await register_device(gql, alice.token)
    assert again.device_id == 1


# ── uploading prekeys ──


async def test_upload_refills_one_time_keys_and_rotates_signed_and_kem_prekeys(
    gql: GraphQLClient, app: Any
) -> None:
    (alice,) = await create_users(app, ["alice"])
    device = await register_device(gql, alice.token, one_time_count=3)
    status = (await gql(STATUS, {"deviceId": 1}, token=alice.token)).ok()["preKeyStatus"]
    assert status == {
        "deviceId": 1,
        "oneTimePreKeyCount": 3,
        "signedPreKeyId": 1,
        "kemPreKeyId": 1,
    }
    spk = signed_prekey(device.identity, key_id=2)
    kem = kem_prekey(device.identity, key_id=7)
    upload = {
        "deviceId": 1,
        "signedPreKey": spk.as_input(),
        "kemPreKey": kem.as_input(),
        "oneTimePreKeys": one_time_inputs(one_time_prekeys(100, first_id=2**24 - 100)),
    }
    result = (await gql(UPLOAD, {"input": upload}, token=alice.token)).ok()["uploadPreKeys"]
    assert result == {
        "deviceId": 1,
        "oneTimePreKeyCount": 103,
        "signedPreKeyId": 2,
        "kemPreKeyId": 7,
    }
    # Only one-time keys: the signed and KEM prekeys stay.
    only = {"deviceId": 1, "oneTimePreKeys": one_time_inputs(one_time_prekeys(1, 500))}
    result = (await gql(UPLOAD, {"input": only}, token=alice.token)).ok()["uploadPreKeys"]
    assert (result["oneTimePreKeyCount"], result["signedPreKeyId"]) == (104, 2)
    (bob,) = await create_users(app, ["bob"])
    (bundle,) = await claim_bundles(gql, bob.token, alice.id)
    assert unb64(bundle["signedPreKey"]["publicKey"]) == spk.public
    assert unb64(bundle["kemPreKey"]["publicKey"]) == kem.public
    assert verify_bundle(bundle)


@pytest.mark.parametrize(
    "case",
    ["spk-signature", "kem-signature", "101-one-time", "key-id-0", "duplicate", "unknown-device"],
)
async def test_bad_upload_is_refused_and_stores_nothing(
    gql: GraphQLClient, app: Any, case: str
) -> None:
    (alice,) = await create_users(app, ["alice"])
    device = await register_device(gql, alice.token, one_time_count=3)
    spk = signed_prekey(device.identity, key_id=2)
    kem = kem_prekey(device.identity, key_id=2)
    upload: dict[str, Any] = {
        "deviceId": 1,
        "signedPreKey": spk.as_input(),
        "kemPreKey": kem.as_input(),
        "oneTimePreKeys": one_time_inputs(one_time_prekeys(5, first_id=100)),
    }
    expected = "BAD_USER_INPUT"
    if case == "spk-signature":
        upload["signedPreKey"]["signature"] = b64(tamper(spk.signature))
    elif case == "kem-signature":
        upload["kemPreKey"] = signed_prekey(KeyPair.generate()).as_input()
    elif case == "101-one-time":
        upload["oneTimePreKeys"] = one_time_inputs(one_time_prekeys(101, first_id=100))
    elif case == "key-id-0":
        upload["oneTimePreKeys"][2]["keyId"] = 0
    elif case == "duplicate":
        upload["oneTimePreKeys"][2]["keyId"] = 100
    elif case == "unknown-device":
        upload["deviceId"] = 2
        expected = "NOT_FOUND"
    result = await gql(UPLOAD, {"input": upload}, token=alice.token)
    assert result.codes == [expected]
    status = (await gql(STATUS, {"deviceId": 1}, token=alice.token)).ok()["preKeyStatus"]
    assert status == {
        "deviceId": 1,
        "oneTimePreKeyCount": 3,
        "signedPreKeyId": 1,
        "kemPreKeyId": 1,
    }


# ── claiming bundles ──


async def test_a_claim_gives_one_bundle_per_device_each_with_its_own_one_time_key(
    gql: GraphQLClient, app: Any
) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    primary = await register_device(gql, alice.token, one_time_count=2, registration_id=11)
    linked = await register_device(
        gql, alice.token, identity=primary.identity, one_time_count=1, with_kem=False
    )
    first = await claim_bundles(gql, bob.token, alice.id)
    assert [(b["userId"], b["deviceId"]) for b in first] == [(alice.id, 1), (alice.id, 2)]
    one, two = first
    assert one["registrationId"] == 11
    assert unb64(one["identityKey"]) == primary.identity.public
    assert (
        unb64(one["oneTimePreKey"]["publicKey"])
        == primary.one_time(one["oneTimePreKey"]["keyId"]).public
    )
    assert (
        unb64(two["oneTimePreKey"]["publicKey"])
        == linked.one_time(two["oneTimePreKey"]["keyId"]).public
    )
    assert two["kemPreKey"] is None and one["kemPreKey"] is not None
    assert all(verify_bundle(b) for b in first)
    second = await claim_bundles(gql, bob.token, alice.id)
    assert second[0]["oneTimePreKey"]["keyId"] != one["oneTimePreKey"]["keyId"]
    assert second[1]["oneTimePreKey"] is None  # ran out: a bundle without one
    third = await claim_bundles(gql, bob.token, alice.id)
    assert [b["oneTimePreKey"] for b in third] == [None, None]
    # The KEM last-resort key is never consumed.
    assert all(
        unb64(b["kemPreKey"]["publicKey"]) == primary.kem_prekey.public
        for b in (first[0], second[0], third[0])
        if primary.kem_prekey
    )
    status = (await gql(STATUS, {"deviceId": 1}, token=alice.token)).ok()["preKeyStatus"]
    assert (status["oneTimePreKeyCount"], status["kemPreKeyId"]) == (0, 1)


async def test_a_user_without_devices_has_no_bundles(gql: GraphQLClient, app: Any) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    assert await claim_bundles(gql, bob.token, alice.id) == []


async def test_concurrent_claims_never_hand_out_the_same_one_time_key(
    gql: GraphQLClient, app: Any
) -> None:
    claimers = await create_users(app, [f"claimer{i}" for i in range(12)])
    (alice,) = await create_users(app, ["alice"])
    primary = await register_device(gql, alice.token, one_time_count=40)
    await register_device(gql, alice.token, identity=primary.identity, one_time_count=40)

    async def claim(account: Account) -> list[dict[str, Any]]:
        bundles: list[dict[str, Any]] = []
        for _ in range(3):
            bundles += await claim_bundles(gql, account.token, alice.id)
        return bundles

    results = await asyncio.gather(*(claim(c) for c in claimers))
    handed = [
        (b["deviceId"], b["oneTimePreKey"]["keyId"])
        for bundles in results
        for b in bundles
        if b["oneTimePreKey"] is not None
    ]
    assert len(handed) == 12 * 3 * 2  # 72 claims of 80 keys: none ran out
    assert len(set(handed)) == len(handed)  # no key handed out twice
    assert await count(app, OneTimePreKeyRow) == 80 - 72


async def test_concurrent_claims_of_the_last_keys_give_each_key_once(
    gql: GraphQLClient, app: Any
) -> None:
    claimers = await create_users(app, [f"claimer{i}" for i in range(10)])
    (alice,) = await create_users(app, ["alice"])
    await register_device(gql, alice.token, one_time_count=4)
    results = await asyncio.gather(*(claim_bundles(gql, c.token, alice.id) for c in claimers))
    keys = [b["oneTimePreKey"]["keyId"] for (b,) in results if b["oneTimePreKey"] is not None]
    assert sorted(keys) == [1, 2, 3, 4]  # every key once; six claimers got none
    assert await count(app, OneTimePreKeyRow) == 0


async def test_claims_are_rate_limited_per_claimer_and_target(gql: GraphQLClient, app: Any) -> None:
    alice, bob, carol, dave = await create_users(app, ["alice", "bob", "carol", "dave"])
    await register_device(gql, alice.token, one_time_count=20)
    await register_device(gql, dave.token, one_time_count=5)
    for _ in range(6):
        await claim_bundles(gql, bob.token, alice.id)
    refused = await gql(
        "mutation($u: ID!) { claimPreKeyBundles(userId: $u) { deviceId } }",
        {"u": alice.id},
        token=bob.token,
    )
    assert refused.codes == ["RATE_LIMITED"]
    assert refused.errors[0]["extensions"]["retryAfter"] >= 1
    assert await count(app, OneTimePreKeyRow, user_id=pk(alice)) == 14  # nothing taken
    # Another claimer of the same target, and the same claimer of another target: fine.
    assert len(await claim_bundles(gql, carol.token, alice.id)) == 1
    assert len(await claim_bundles(gql, bob.token, dave.id)) == 1
    # Key packages are counted apart from prekey bundles.
    assert await claim_packages(gql, bob.token, [alice.id]) == []


async def test_claims_of_a_blocked_missing_or_other_platform_user_are_not_found(
    gql: GraphQLClient, app: Any
) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    (vic,) = await create_users(app, ["vic"], platform="vignette")
    await register_device(gql, alice.token, one_time_count=3)
    await register_device(gql, bob.token, one_time_count=3)
    await register_device(gql, vic.token, one_time_count=3, platform="vignette")
    assert (await gql(BLOCK, {"id": bob.id}, token=alice.token)).errors == []
    claim = "mutation($u: ID!) { claimPreKeyBundles(userId: $u) { deviceId } }"
    packages = "mutation($u: [ID!]!) { claimKeyPackages(userIds: $u) { deviceId } }"
    # alice blocked bob: neither finds the other's keys.
    for token, target in ((bob.token, alice.id), (alice.token, bob.id)):
        assert (await gql(claim, {"u": target}, token=token)).codes == ["NOT_FOUND"]
        assert (await gql(packages, {"u": [target]}, token=token)).codes == ["NOT_FOUND"]
    # A user of the other platform, or one that does not exist.
    from resolvers.ids import encode_id

    for target in (vic.id, encode_id("User", 999999)):
        assert (await gql(claim, {"u": target}, token=carol.token)).codes == ["NOT_FOUND"]
    assert (await gql(claim, {"u": "not-an-id"}, token=carol.token)).codes == ["BAD_USER_INPUT"]
    # Signed out.
    assert (await gql(claim, {"u": alice.id})).codes == ["UNAUTHENTICATED"]
    assert (await gql(packages, {"u": [alice.id]})).codes == ["UNAUTHENTICATED"]
    # Nothing was taken from anyone.
    for user in (alice, bob):
        assert await count(app, OneTimePreKeyRow, user_id=pk(user)) == 3
    assert await count(app, OneTimePreKeyRow, user_id=pk(vic)) == 3
    # One blocked user among several: the whole claim is NOT_FOUND, nothing taken.
    assert (await publish(gql, alice.token, 1, [b"a-kp"], None)).ok()
    assert (await publish(gql, bob.token, 1, [b"b-kp"], None)).ok()
    mixed = await gql(packages, {"u": [carol.id, bob.id]}, token=alice.token)
    assert mixed.codes == ["NOT_FOUND"]
    assert await count(app, KeyPackageRow) == 2
    # carol (no block) may.
    assert len(await claim_packages(gql, carol.token, [alice.id, bob.id])) == 2
    assert len(await claim_bundles(gql, carol.token, alice.id)) == 1


# ── MLS key packages ──


async def publish(
    gql: GraphQLClient, token: str, device_id: int, packages: list[bytes], last: bytes | None
) -> Any:
    variables = {
        "deviceId": device_id,
        "keyPackages": [b64(p) for p in packages],
        "lastResort": None if last is None else b64(last),
    }
    return await gql(PUBLISH, variables, token=token)


async def claim_packages(gql: GraphQLClient, token: str, user_ids: list[str]) -> list[Any]:
    result = await gql(CLAIM_PACKAGES, {"userIds": user_ids}, token=token)
    return list(result.ok()["claimKeyPackages"])


async def test_key_packages_are_claimed_once_per_device_then_the_last_resort_one(
    gql: GraphQLClient, app: Any
) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    primary = await register_device(gql, alice.token)
    await register_device(gql, alice.token, identity=primary.identity)
    await register_device(gql, bob.token)
    published = await publish(gql, alice.token, 1, [b"a1-kp1", b"a1-kp2"], b"a1-last")
    assert published.ok() == {"publishKeyPackages": 2}
    assert (await publish(gql, alice.token, 2, [b"a2-kp1"], None)).ok() == {"publishKeyPackages": 1}
    assert (await publish(gql, bob.token, 1, [b"b1-kp1"], b"b1-last")).ok()
    first = await claim_packages(gql, carol.token, [alice.id, bob.id])
    got = {(c["userId"], c["deviceId"]): unb64(c["keyPackage"]) for c in first}
    assert got == {
        (alice.id, 1): b"a1-kp1",
        (alice.id, 2): b"a2-kp1",
        (bob.id, 1): b"b1-kp1",
    }
    second = await claim_packages(gql, carol.token, [alice.id, bob.id])
    got = {(c["userId"], c["deviceId"]): unb64(c["keyPackage"]) for c in second}
    # alice's device 2 has nothing left and no last resort: left out.
    assert got == {(alice.id, 1): b"a1-kp2", (bob.id, 1): b"b1-last"}
    third = await claim_packages(gql, carol.token, [alice.id, bob.id])
    got = {(c["userId"], c["deviceId"]): unb64(c["keyPackage"]) for c in third}
    assert got == {(alice.id, 1): b"a1-last", (bob.id, 1): b"b1-last"}  # kept, reused
    assert await count(app, KeyPackageRow, last_resort=True) == 2
    # A new last resort replaces the old one.
    assert (await publish(gql, alice.token, 1, [], b"a1-last-2")).ok() == {"publishKeyPackages": 0}
    (claimed,) = [
        c for c in await claim_packages(gql, carol.token, [alice.id]) if c["deviceId"] == 1
    ]
    assert unb64(claimed["keyPackage"]) == b"a1-last-2"


async def test_at_most_100_key_packages_per_device(gql: GraphQLClient, app: Any) -> None:
    (alice,) = await create_users(app, ["alice"])
    await register_device(gql, alice.token)
    packages = [f"kp{i}".encode() for i in range(100)]
    assert (await publish(gql, alice.token, 1, packages[:60], None)).ok()
    over = await publish(gql, alice.token, 1, packages[60:] + [b"one-too-many"], b"last")
    assert over.codes == ["BAD_USER_INPUT"]
    assert await count(app, KeyPackageRow) == 60  # nothing of the refused call
    too_many = await publish(gql, alice.token, 1, packages + [b"x"], None)
    assert too_many.codes == ["BAD_USER_INPUT"]
    empty = await publish(gql, alice.token, 1, [b""], None)
    assert empty.codes == ["BAD_USER_INPUT"]
    assert (await publish(gql, alice.token, 1, packages[60:], None)).ok() == {
        "publishKeyPackages": 100
    }
    assert (await publish(gql, alice.token, 7, [b"kp"], None)).codes == ["NOT_FOUND"]
    assert await count(app, KeyPackageRow) == 100


async def test_concurrent_key_package_claims_never_share_a_package(
    gql: GraphQLClient, app: Any
) -> None:
    claimers = await create_users(app, [f"claimer{i}" for i in range(10)])
    (alice,) = await create_users(app, ["alice"])
    await register_device(gql, alice.token)
    packages = [f"kp{i}".encode() for i in range(6)]
    assert (await publish(gql, alice.token, 1, packages, b"last")).ok()
    results = await asyncio.gather(*(claim_packages(gql, c.token, [alice.id]) for c in claimers))
    got = [unb64(c["keyPackage"]) for (c,) in results]
    one_time = [p for p in got if p != b"last"]
    assert sorted(one_time) == sorted(packages)  # each exactly once
    assert got.count(b"last") == 4
    assert await count(app, KeyPackageRow) == 1


async def test_key_package_claims_are_rate_limited(gql: GraphQLClient, app: Any) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    await register_device(gql, alice.token)
    assert (await publish(gql, alice.token, 1, [b"kp"], b"last")).ok()
    for _ in range(6):
        await claim_packages(gql, bob.token, [alice.id])
    refused = await gql(CLAIM_PACKAGES, {"userIds": [alice.id]}, token=bob.token)
    assert refused.codes == ["RATE_LIMITED"]


async def test_concurrent_registrations_respect_the_device_limit(
    gql: GraphQLClient, app: Any
) -> None:
    (alice,) = await create_users(app, ["alice"])
    identity = KeyPair.generate()

    async def register(registration_id: int) -> Any:
        value = device_input(
            identity, registration_id, signed_prekey(identity), None, one_time_prekeys(2)
        )
        return await gql(REGISTER, {"input": value}, token=alice.token)

    # Eight devices with one new identity key at once: the first of them is the
    # primary, five more are linked, two are refused.
    results = await asyncio.gather(*(register(i) for i in range(1, 9)))
    registered = [r.data["registerMessagingDevice"] for r in results if not r.errors]
    assert sorted(d["deviceId"] for d in registered) == [1, 2, 3, 4, 5, 6]
    assert sorted(code for r in results for code in r.codes) == ["CONFLICT", "CONFLICT"]
    assert len(await devices(gql, alice.token)) == 6
    assert await count(app, OneTimePreKeyRow) == 12
    assert await count(app, MessagingIdentityRow) == 1


async def test_a_user_claims_their_own_other_devices(gql: GraphQLClient, app: Any) -> None:
    (alice,) = await create_users(app, ["alice"])
    primary = await register_device(gql, alice.token, one_time_count=10)
    await register_device(gql, alice.token, identity=primary.identity, one_time_count=10)
    for _ in range(8):  # a user's own devices are not limited per target
        bundles = await claim_bundles(gql, alice.token, alice.id)
        assert [b["deviceId"] for b in bundles] == [1, 2]
        assert all(b["oneTimePreKey"] is not None for b in bundles)
