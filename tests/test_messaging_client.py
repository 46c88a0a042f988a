"""The reference client's crypto, offline: X3DH, the Double Ratchet, fan-out, MLS.

No server here: bundles are built in the contract's PreKeyBundle shape from the
other device's public keys, as claimPreKeyBundles would serve them. The end to
end tests through the API are tests/test_messaging_e2e.py.
"""

from __future__ import annotations

import base64
import random
from typing import Any

import pytest
import x3dh
from doubleratchet import AuthenticationFailedException
from doubleratchet.diffie_hellman_ratchet import DuplicateMessageException

from clients.messaging import mls
from clients.messaging.client import Device
from clients.messaging.encoding import b64, encode_curve, unb64
from clients.messaging.keys import Identity, verify
from clients.messaging.sessions import decode_prekey_message


def bundle_of(device: Device, one_time: bool = True, kem: bool = True) -> dict[str, Any]:
    """What claimPreKeyBundles returns for `device` (taking one one-time prekey)."""
    one_time_key = None
    if one_time and device.keys.one_time_ids:
        public, key_id = sorted(device.keys.one_time_ids.items(), key=lambda item: item[1])[0]
        device.keys.one_time_ids.pop(public)  # the server hands each one out once
        one_time_key = {"keyId": key_id, "publicKey": b64(encode_curve(public))}
    return {
        "userId": device.user_id,
        "deviceId": device.device_id,
        "registrationId": device.registration_id,
        "identityKey": b64(device.identity.public_key),
        "signedPreKey": device.keys.signed_prekey_input(),
        "oneTimePreKey": one_time_key,
        "kemPreKey": device.keys.kem_prekey_input() if kem else None,
    }


def device(user: str, number: int = 1, identity: Identity | None = None) -> Device:
    made = Device.create(user, identity)
    made.device_id = number
    return made


async def deliver(sender: Device, recipient: Device, envelopes: list[dict[str, Any]]) -> bytes:
    """Open the one envelope addressed to `recipient`."""
    (mine,) = [
        e for e in envelopes if (e["recipientId"], e["recipientDeviceId"]) == recipient.address
    ]
    return await recipient.decrypt(sender.address, mine["type"], unb64(mine["content"]))


async def test_x3dh_then_the_double_ratchet_both_ways() -> None:
    alice, bob = device("alice"), device("bob")
    bundle = bundle_of(bob)
    await alice.start_session(bundle)

    first = await alice.encrypt_for([bob.address], b"hello bob")
    assert first[0]["type"] == "PREKEY_MESSAGE"
    assert first[0]["recipientRegistrationId"] == bob.registration_id
    header, _ = decode_prekey_message(unb64(first[0]["content"]))
    assert header.kem_ciphertext is not None  # the KEM prekey was used
    assert header.one_time_prekey is not None
    assert await deliver(alice, bob, first) == b"hello bob"
    # The one-time prekey is gone from Bob's state once used.
    assert header.one_time_prekey not in bob.keys.state.bundle.pre_keys

    for turn in range(6):
        speaker, listener = (bob, alice) if turn % 2 == 0 else (alice, bob)
        text = f"message {turn} from {speaker.user_id}".encode()
        envelopes = await speaker.encrypt_for([listener.address], text)
        assert await deliver(speaker, listener, envelopes) == text
    # Alice got an answer: she sends plain ratchet messages now.
    later = await alice.encrypt_for([bob.address], b"no header any more")
    assert later[0]["type"] == "CIPHERTEXT"
    assert await deliver(alice, bob, later) == b"no header any more"


async def test_out_of_order_and_before_the_first_reply() -> None:
    alice, bob = device("alice"), device("bob")
    await alice.start_session(bundle_of(bob))
    sent = [await alice.encrypt_for([bob.address], f"a{i}".encode()) for i in range(8)]
    assert all(e[0]["type"] == "PREKEY_MESSAGE" for e in sent)  # until Bob replies
    order = list(range(8))
    random.Random(7).shuffle(order)
    got = {i: await deliver(alice, bob, sent[i]) for i in order}
    assert got == {i: f"a{i}".encode() for i in range(8)}

    # Both directions interleaved and shuffled across a ratchet step.
    replies = [await bob.encrypt_for([alice.address], f"b{i}".encode()) for i in range(5)]
    more = [await alice.encrypt_for([bob.address], f"c{i}".encode()) for i in range(5)]
    for i in (4, 0, 2, 1, 3):
        assert await deliver(bob, alice, replies[i]) == f"b{i}".encode()
    for i in (3, 4, 0, 1, 2):
        assert await deliver(alice, bob, more[i]) == f"c{i}".encode()


async def test_a_message_decrypts_once() -> None:
    alice, bob = device("alice"), device("bob")
    await alice.start_session(bundle_of(bob))
    first = await alice.encrypt_for([bob.address], b"hi")
    await deliver(alice, bob, first)
    reply = await bob.encrypt_for([alice.address], b"yo")
    assert await deliver(bob, alice, reply) == b"yo"
    with pytest.raises(DuplicateMessageException):  # its key was deleted after use
        await deliver(bob, alice, reply)


async def test_without_one_time_or_kem_prekey() -> None:
    alice, bob = device("alice"), device("bob")
    await alice.start_session(bundle_of(bob, one_time=False, kem=False))
    envelopes = await alice.encrypt_for([bob.address], b"classic")
    header, _ = decode_prekey_message(unb64(envelopes[0]["content"]))
    assert header.one_time_prekey is None and header.kem_ciphertext is None
    assert await deliver(alice, bob, envelopes) == b"classic"


async def test_a_forged_bundle_is_refused() -> None:
    alice, bob, mallory = device("alice"), device("bob"), device("mallory")
    bundle = bundle_of(bob)
    bundle["signedPreKey"] = mallory.keys.signed_prekey_input()  # signed by someone else
    with pytest.raises(x3dh.KeyAgreementException):
        await alice.start_session(bundle)
    bundle = bundle_of(bob)
    bundle["kemPreKey"] = mallory.keys.kem_prekey_input()
    with pytest.raises(x3dh.KeyAgreementException):
        await alice.start_session(bundle)


async def test_tampered_ciphertext_does_not_decrypt() -> None:
    alice, bob = device("alice"), device("bob")
    await alice.start_session(bundle_of(bob))
    await deliver(alice, bob, await alice.encrypt_for([bob.address], b"setup"))
    envelopes = await alice.encrypt_for([bob.address], b"secret")
    content = bytearray(unb64(envelopes[0]["content"]))
    content[-1] ^= 1
    envelopes[0]["content"] = b64(bytes(content))
    with pytest.raises(AuthenticationFailedException):
        await deliver(alice, bob, envelopes)


async def test_signatures_cover_the_uploaded_bytes() -> None:
    bob = device("bob")
    spk = bob.keys.signed_prekey_input()
    public = base64.b64decode(spk["publicKey"])
    assert len(public) == 33 and public[0] == 5
    assert len(bob.identity.public_key) == 33
    assert verify(bob.identity.public_key, public, base64.b64decode(spk["signature"]))
    kem = bob.keys.kem_prekey_input()
    assert kem is not None
    kem_public = base64.b64decode(kem["publicKey"])
    assert kem_public[0] == 8 and len(kem_public) == 1 + 1568  # ML-KEM-1024
    assert verify(bob.identity.public_key, kem_public, base64.b64decode(kem["signature"]))


async def test_multi_device_fan_out() -> None:
    alice1 = device("alice", 1)
    alice2 = device("alice", 2, alice1.identity)  # linked: same identity key
    bob1 = device("bob", 1)
    bob2 = device("bob", 2, bob1.identity)
    for target in (alice2, bob1, bob2):
        await alice1.start_session(bundle_of(target))
    addresses = alice1.fan_out(["bob"])
    assert addresses == [("bob", 1), ("bob", 2), ("alice", 2)]
    envelopes = await alice1.encrypt_for(addresses, b"to everyone")
    contents = {e["content"] for e in envelopes}
    assert len(contents) == 3  # one ciphertext per device, each under its own session
    for receiver in (alice2, bob1, bob2):
        assert await deliver(alice1, receiver, envelopes) == b"to everyone"
    # Bob's second device answers Alice's first only: the sessions are per device.
    await bob2.start_session(bundle_of(alice2))
    reply = await bob2.encrypt_for([alice1.address], b"from bob 2")
    assert await deliver(bob2, alice1, reply) == b"from bob 2"


async def test_mls_group_of_three_with_add_remove_and_messages() -> None:
    alice, bob, carol = mls.Member("alice", 1), mls.Member("bob", 1), mls.Member("carol", 1)
    group_a = alice.create_group(b"group-1")
    add_bob = group_a.add(bob.key_packages(1))
    assert mls.message_header(add_bob.commit).epoch == 0
    assert add_bob.welcome is not None
    group_a.merge(add_bob)
    group_b = bob.join(add_bob.welcome, group_a.epoch, b"group-1")

    add_carol = group_a.add(carol.key_packages(1))
    group_a.merge(add_carol)
    assert group_b.process(add_carol.commit).kind == "commit"
    assert add_carol.welcome is not None
    group_c = carol.join(add_carol.welcome, group_a.epoch, b"group-1")
    assert group_a.epoch == group_b.epoch == group_c.epoch == 2
    assert [leaf.identity for leaf in group_a.members()] == [b"alice/1", b"bob/1", b"carol/1"]

    for speaker, listeners in (
        (group_a, (group_b, group_c)),
        (group_b, (group_a, group_c)),
        (group_c, (group_a, group_b)),
    ):
        text = f"hello from {speaker.member.identity.decode()}".encode()
        ciphertext = speaker.encrypt(text)
        header = mls.message_header(ciphertext)
        assert (header.group_id, header.epoch, header.content_type) == (b"group-1", 2, 1)
        assert text not in ciphertext
        for listener in listeners:
            assert listener.process(ciphertext).data == text

    removal = group_b.remove(["carol"])  # any member may remove
    group_b.merge(removal)
    assert group_a.process(removal.commit).kind == "commit"
    assert group_c.process(removal.commit).kind == "removed"
    assert not group_c.active
    after = group_a.encrypt(b"carol cannot read this")
    assert group_b.process(after).data == b"carol cannot read this"
    with pytest.raises(mls.MlsError):
        group_c.process(after)
    assert [leaf.identity for leaf in group_a.members()] == [b"alice/1", b"bob/1"]


async def test_mls_concurrent_commits_one_wins_the_other_retries() -> None:
    alice, bob, carol = mls.Member("alice", 1), mls.Member("bob", 1), mls.Member("carol", 1)
    group_a = alice.create_group(b"race")
    add = group_a.add(bob.key_packages(1))
    group_a.merge(add)
    assert add.welcome is not None
    group_b = bob.join(add.welcome, 1, b"race")

    mine = group_a.update()
    theirs = group_b.add(carol.key_packages(1))
    assert mine.epoch == theirs.epoch == 1
    # The delivery service takes Alice's (first) and refuses Bob's: Bob applies
    # the winner, and builds his change again in the new epoch.
    group_a.merge(mine)
    assert group_b.process(mine.commit).kind == "commit"
    retry = group_b.add(carol.key_packages(1))
    assert retry.epoch == 2
    group_b.merge(retry)
    assert group_a.process(retry.commit).kind == "commit"
    assert retry.welcome is not None
    group_c = carol.join(retry.welcome, 3, b"race")
    message = group_c.encrypt(b"joined after the race")
    assert group_a.process(message).data == b"joined after the race"
    assert group_b.process(message).data == b"joined after the race"
    # The losing commit is never applicable: it is for an epoch that is gone.
    with pytest.raises(mls.MlsError):
        group_a.process(theirs.commit)
