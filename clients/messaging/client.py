"""A messaging device: keys, pairwise sessions, MLS groups, and the API calls.

`Device` is what an app holds per installed device. The crypto works without
a server (`encrypt_for` / `decrypt`), which the offline tests use; with an
`Api` it registers, claims bundles, sends with multi-device fan-out (every
device of every recipient and the sender's other devices, each under its own
session) and opens envelopes from the queue or the live subscription.

The server sees only what this class sends through `Api`: public keys, key
packages and ciphertext.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from clients.messaging import attachments, mls
from clients.messaging.encoding import b64, unb64
from clients.messaging.keys import Identity, PreKeys, new_registration_id
from clients.messaging.sessions import Session, decode_prekey_message, initiate, respond
from clients.messaging.transport import Api, GraphQLError, Subscription

Address = tuple[str, int]  # (user id, device id)

REGISTER = """
mutation($input: RegisterMessagingDeviceInput!) {
  registerMessagingDevice(input: $input) { deviceId registrationId }
}
"""
UPLOAD_PREKEYS = """
mutation($input: UploadPreKeysInput!) {
  uploadPreKeys(input: $input) { deviceId oneTimePreKeyCount signedPreKeyId kemPreKeyId }
}
"""
CLAIM_BUNDLES = """
mutation($userId: ID!) {
  claimPreKeyBundles(userId: $userId) {
    userId deviceId registrationId identityKey
    signedPreKey { keyId publicKey signature }
    oneTimePreKey { keyId publicKey }
    kemPreKey { keyId publicKey signature }
  }
}
"""
SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { conversationId serverTimestamp deliveredDeviceCount duplicate }
}
"""
ENVELOPE_FIELDS = (
    "id sequence type senderId senderDeviceId conversationId content serverTimestamp expiresAt"
)
PENDING = f"""
query($deviceId: Int!, $first: Int, $after: String) {{
  pendingEnvelopes(deviceId: $deviceId, first: $first, after: $after) {{
    edges {{ cursor node {{ {ENVELOPE_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
ACKNOWLEDGE = "mutation($d: Int!, $ids: [ID!]!) { acknowledgeEnvelopes(deviceId: $d, ids: $ids) }"
ENVELOPES = f"""
subscription($deviceId: Int!, $afterSequence: Int) {{
  envelopes(deviceId: $deviceId, afterSequence: $afterSequence) {{ {ENVELOPE_FIELDS} }}
}}
"""
PUBLISH_KEY_PACKAGES = """
mutation($d: Int!, $kps: [Base64!]!, $last: Base64) {
  publishKeyPackages(deviceId: $d, keyPackages: $kps, lastResort: $last)
}
"""
CLAIM_KEY_PACKAGES = """
mutation($ids: [ID!]!) { claimKeyPackages(userIds: $ids) { userId deviceId keyPackage } }
"""
GROUP_FIELDS = "id kind groupId epoch name members { id }"
CREATE_GROUP = f"""
mutation($input: CreateGroupInput!) {{ createGroup(input: $input) {{ {GROUP_FIELDS} }} }}
"""
COMMIT = f"""
mutation($input: CommitInput!) {{ commitToGroup(input: $input) {{ {GROUP_FIELDS} }} }}
"""
SEND_GROUP = """
mutation($input: GroupMessageInput!) {
  sendGroupMessage(input: $input) { conversationId serverTimestamp deliveredDeviceCount duplicate }
}
"""
CONVERSATION = f"query($id: ID!) {{ conversation(id: $id) {{ {GROUP_FIELDS} }} }}"
UPLOAD_ATTACHMENT = """
mutation($file: Upload!) { uploadEncryptedAttachment(file: $file) { id url sizeBytes } }
"""
MAX_KEY_PACKAGE_USERS = 100  # claimKeyPackages takes at most this many users per call
RATE_LIMIT_RETRIES = 3


@dataclass
class Message:
    """An opened envelope."""

    envelope: dict[str, Any]
    kind: str  # "direct", "group", "commit", "welcome", "removed", "other"
    plaintext: bytes = b""
    conversation_id: str | None = None

    @property
    def sender(self) -> Address:
        return (self.envelope["senderId"], int(self.envelope["senderDeviceId"]))

    @property
    def sequence(self) -> int:
        return int(self.envelope["sequence"])


@dataclass
class Device:
    user_id: str
    identity: Identity
    keys: PreKeys
    registration_id: int
    device_id: int = 0
    api: Api | None = None
    sessions: dict[Address, Session] = field(default_factory=dict)
    # What we believe each user's devices are: {user id: {device id: registration id}}.
    devices: dict[str, dict[int, int]] = field(default_factory=dict)
    groups: dict[str, mls.Group] = field(default_factory=dict)  # conversation id → group
    _member: mls.Member | None = None

    @classmethod
    def create(
        cls,
        user_id: str,
        identity: Identity | None = None,
        *,
        one_time: int = 10,
        kem: bool = True,
        api: Api | None = None,
    ) -> Device:
        """A device with fresh prekeys; pass the primary's `identity` to link a device."""
        identity = identity or Identity.generate()
        keys = PreKeys.create(identity, one_time=one_time, kem=kem)
        return cls(user_id, identity, keys, new_registration_id(), api=api)

    @property
    def address(self) -> Address:
        return (self.user_id, self.device_id)

    @property
    def member(self) -> mls.Member:
        """This device as an MLS client (its credential names the device id)."""
        if self._member is None:
            self._member = mls.Member(self.user_id, self.device_id)
        return self._member

    # ── pairwise crypto (no server needed) ──

    async def start_session(self, bundle: dict[str, Any]) -> None:
        """X3DH from a claimed PreKeyBundle; replaces any earlier session with that device."""
        address = (bundle["userId"], int(bundle["deviceId"]))
        self.sessions[address] = await initiate(self.keys, self.registration_id, bundle)
        self.devices.setdefault(address[0], {})[address[1]] = int(bundle["registrationId"])

    async def encrypt_for(
        self, addresses: Iterable[Address], plaintext: bytes
    ) -> list[dict[str, Any]]:
        """OutgoingEnvelopeInput for each address (each must have a session)."""
        envelopes = []
        for user_id, device_id in addresses:
            session = self.sessions[(user_id, device_id)]
            kind, content = await session.encrypt(plaintext)
            envelopes.append(
                {
                    "recipientId": user_id,
                    "recipientDeviceId": device_id,
                    "recipientRegistrationId": session.remote_registration_id,
                    "type": kind,
                    "content": b64(content),
                }
            )
        return envelopes

    async def decrypt(self, sender: Address, kind: str, content: bytes) -> bytes:
        """Open a PREKEY_MESSAGE or CIPHERTEXT from `sender`."""
        session = self.sessions.get(sender)
        if kind == "PREKEY_MESSAGE":
            header, body = decode_prekey_message(content)
            if session is not None and header.ephemeral_key in session.base_keys:
                return await session.decrypt(body)  # a later message of the same setup
            session, plaintext = await respond(self.keys, content)
            self.sessions[sender] = session
            self.devices.setdefault(sender[0], {})[sender[1]] = session.remote_registration_id
            return plaintext
        if session is None:
            raise LookupError(f"no session with {sender}")
        return await session.decrypt(content)

    # ── through the API ──

    def _api(self) -> Api:
        if self.api is None:
            raise RuntimeError("this device has no Api")
        return self.api

    @property
    def token(self) -> str:
        return self._api().token

    async def request(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """Any GraphQL operation as this device's user (data; GraphQLError on errors)."""
        return await self._api()(query, variables)

    async def register(self, name: str | None = None) -> int:
        data = await self._api()(
            REGISTER, {"input": self.keys.registration_input(self.registration_id, name)}
        )
        self.device_id = int(data["registerMessagingDevice"]["deviceId"])
        return self.device_id

    async def refill_prekeys(self, count: int) -> int:
        fresh = self.keys.generate_one_time(count)
        data = await self._api()(
            UPLOAD_PREKEYS,
            {
                "input": {
                    "deviceId": self.device_id,
                    "oneTimePreKeys": self.keys.one_time_inputs(fresh),
                }
            },
        )
        return int(data["uploadPreKeys"]["oneTimePreKeyCount"])

    async def claim(self, user_id: str) -> list[dict[str, Any]]:
        data = await self._api()(CLAIM_BUNDLES, {"userId": user_id})
        bundles: list[dict[str, Any]] = data["claimPreKeyBundles"]
        return bundles

    async def connect(self, user_id: str) -> None:
        """Sessions with every current device of `user_id` (ours: our other devices).

        Claims the user's bundles; keeps the sessions of devices that are still
        there with the same registration id and identity key, starts X3DH with
        new or re-registered ones, and forgets devices that are gone.
        """
        present: dict[int, int] = {}
        for bundle in await self.claim(user_id):
            address = (bundle["userId"], int(bundle["deviceId"]))
            if address == self.address:
                continue
            present[address[1]] = int(bundle["registrationId"])
            session = self.sessions.get(address)
            if (
                session is None
                or session.remote_registration_id != present[address[1]]
                or session.remote_identity_key != unb64(bundle["identityKey"])
            ):
                await self.start_session(bundle)
        for device_id in set(self.devices.get(user_id, {})) - set(present):
            self.sessions.pop((user_id, device_id), None)
        self.devices[user_id] = present

    def fan_out(self, user_ids: Iterable[str]) -> list[Address]:
        """Every device of every recipient and our other devices."""
        addresses = []
        for user_id in dict.fromkeys([*user_ids, self.user_id]):
            for device_id in sorted(self.devices.get(user_id, {})):
                if (user_id, device_id) != self.address:
                    addresses.append((user_id, device_id))
        return addresses

    async def send(
        self,
        recipients: list[str],
        plaintext: bytes,
        *,
        client_message_id: str | None = None,
        conversation_id: str | None = None,
        expires_in_seconds: int | None = None,
    ) -> dict[str, Any]:
        """sendMessage to every device of `recipients` and our other devices.

        Sessions are set up on first use; on MISMATCHED_DEVICES or STALE_DEVICES
        the device lists are fetched again and the message re-encrypted once.
        """
        client_message_id = client_message_id or uuid.uuid4().hex
        for user_id in dict.fromkeys([*recipients, self.user_id]):
            if user_id not in self.devices:
                await self.connect(user_id)
        for attempt in range(2):
            envelopes = await self.encrypt_for(self.fan_out(recipients), plaintext)
            request = {
                "clientMessageId": client_message_id,
                "senderDeviceId": self.device_id,
                "conversationId": conversation_id,
                "envelopes": envelopes,
                "expiresInSeconds": expires_in_seconds,
            }
            try:
                data = await self._call_patiently(SEND, {"input": request})
            except GraphQLError as error:
                if attempt or error.code not in ("MISMATCHED_DEVICES", "STALE_DEVICES"):
                    raise
                for user_id in _users_named(error.extensions):
                    await self.connect(user_id)
                continue
            result: dict[str, Any] = data["sendMessage"]
            return result
        raise AssertionError("unreachable")

    async def _call_patiently(self, query: str, variables: dict[str, Any]) -> Any:
        """The call, retried after `retryAfter` seconds when RATE_LIMITED (a few times)."""
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                return await self._api()(query, variables)
            except GraphQLError as error:
                if error.code != "RATE_LIMITED" or attempt == RATE_LIMIT_RETRIES:
                    raise
                await asyncio.sleep(float(error.extensions.get("retryAfter") or 1))
        raise AssertionError("unreachable")

    async def upload_attachment(self, data: bytes) -> attachments.Pointer:
        """Encrypt `data` with a fresh key, upload the ciphertext; the pointer to send."""
        ciphertext, key = attachments.seal(data)
        operations = {"query": UPLOAD_ATTACHMENT, "variables": {"file": None}}
        api = self._api()
        response = await api.http.post(
            f"/{api.platform}/graphql",
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({"0": ["variables.file"]}),
            },
            files={"0": ("attachment", ciphertext, "application/octet-stream")},
            headers={"Authorization": f"Bearer {api.token}"},
        )
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        uploaded = body["data"]["uploadEncryptedAttachment"]
        return attachments.pointer_for(uploaded["id"], uploaded["url"], ciphertext, key)

    async def download_attachment(self, pointer: attachments.Pointer) -> bytes:
        """Fetch the ciphertext (by the url's path, from this client's server) and open it."""
        api = self._api()
        path = httpx.URL(pointer.url).path
        response = await api.http.get(path, headers={"Authorization": f"Bearer {api.token}"})
        response.raise_for_status()
        return attachments.open_sealed(response.content, pointer)

    async def pending(self, first: int = 100) -> list[dict[str, Any]]:
        """Every envelope waiting in this device's queue, oldest first."""
        envelopes: list[dict[str, Any]] = []
        after = None
        while True:
            data = await self._api()(
                PENDING, {"deviceId": self.device_id, "first": first, "after": after}
            )
            page = data["pendingEnvelopes"]
            envelopes.extend(edge["node"] for edge in page["edges"])
            if not page["pageInfo"]["hasNextPage"]:
                return envelopes
            after = page["pageInfo"]["endCursor"]

    async def acknowledge(self, envelopes: Iterable[dict[str, Any]]) -> int:
        ids = [envelope["id"] for envelope in envelopes]
        if not ids:
            return 0
        data = await self._api()(ACKNOWLEDGE, {"d": self.device_id, "ids": ids})
        return int(data["acknowledgeEnvelopes"])

    async def subscribe(
        self, ws_url: str, after_sequence: int | None = None, **options: Any
    ) -> Subscription:
        """The live `envelopes` subscription (replays after `after_sequence` first)."""
        return await Subscription.open(
            ws_url,
            self._api().token,
            ENVELOPES,
            {"deviceId": self.device_id, "afterSequence": after_sequence},
            **options,
        )

    async def open(self, envelope: dict[str, Any]) -> Message:
        """Decrypt or apply one envelope (direct message, commit, Welcome, group message)."""
        kind = envelope["type"]
        content = unb64(envelope["content"])
        sender = (envelope["senderId"], int(envelope["senderDeviceId"]))
        conversation_id = envelope.get("conversationId")
        if kind in ("PREKEY_MESSAGE", "CIPHERTEXT"):
            plaintext = await self.decrypt(sender, kind, content)
            return Message(envelope, "direct", plaintext, conversation_id)
        if kind == "MLS_WELCOME":
            await self._join(conversation_id, content)
            return Message(envelope, "welcome", conversation_id=conversation_id)
        if kind in ("MLS_COMMIT", "MLS_APPLICATION") and conversation_id in self.groups:
            received = self.groups[conversation_id].process(content)
            labels = {"application": "group", "commit": "commit", "removed": "removed"}
            return Message(
                envelope, labels.get(received.kind, "other"), received.data, conversation_id
            )
        return Message(envelope, "other", conversation_id=conversation_id)

    # ── MLS groups through the delivery service ──

    async def publish_key_packages(self, count: int) -> int:
        packages = [b64(kp) for kp in self.member.key_packages(count)]
        data = await self._api()(
            PUBLISH_KEY_PACKAGES, {"d": self.device_id, "kps": packages, "last": None}
        )
        return int(data["publishKeyPackages"])

    async def create_group(self, name: str | None = None) -> str:
        """A new MLS group with only this device; its conversation id."""
        group_id = secrets.token_bytes(16)
        data = await self._api()(
            CREATE_GROUP, {"input": {"groupId": b64(group_id), "name": name, "memberIds": []}}
        )
        conversation_id: str = data["createGroup"]["id"]
        self.groups[conversation_id] = self.member.create_group(group_id)
        return conversation_id

    async def add_members(self, conversation_id: str, user_ids: list[str]) -> dict[str, Any]:
        """Claim a key package per device of `user_ids`, commit the Add, send the Welcome."""
        packages: list[bytes] = []
        for start in range(0, len(user_ids), MAX_KEY_PACKAGE_USERS):
            chunk = user_ids[start : start + MAX_KEY_PACKAGE_USERS]
            data = await self._api()(CLAIM_KEY_PACKAGES, {"ids": chunk})
            packages += [unb64(claimed["keyPackage"]) for claimed in data["claimKeyPackages"]]
        group = self.groups[conversation_id]
        return await self._commit(conversation_id, group.add(packages), added=user_ids)

    async def remove_members(self, conversation_id: str, user_ids: list[str]) -> dict[str, Any]:
        group = self.groups[conversation_id]
        return await self._commit(conversation_id, group.remove(user_ids), removed=user_ids)

    async def update_keys(self, conversation_id: str) -> dict[str, Any]:
        """An empty commit (fresh keys for this member)."""
        return await self._commit(conversation_id, self.groups[conversation_id].update())

    async def _commit(
        self,
        conversation_id: str,
        proposal: mls.Proposal,
        added: list[str] | None = None,
        removed: list[str] | None = None,
    ) -> dict[str, Any]:
        """commitToGroup; merges our commit only once the delivery service took it.

        On CONFLICT (another commit won the epoch) the GraphQLError propagates:
        the caller opens its pending envelopes (the winner) and commits again.
        """
        data = await self._api()(
            COMMIT,
            {
                "input": {
                    "conversationId": conversation_id,
                    "senderDeviceId": self.device_id,
                    "epoch": proposal.epoch,
                    "commit": b64(proposal.commit),
                    "welcome": b64(proposal.welcome) if proposal.welcome else None,
                    "addedMemberIds": added or [],
                    "removedMemberIds": removed or [],
                }
            },
        )
        self.groups[conversation_id].merge(proposal)
        conversation: dict[str, Any] = data["commitToGroup"]
        return conversation

    async def send_group(
        self, conversation_id: str, plaintext: bytes, client_message_id: str | None = None
    ) -> dict[str, Any]:
        group = self.groups[conversation_id]
        request = {
            "conversationId": conversation_id,
            "senderDeviceId": self.device_id,
            "epoch": group.epoch,
            "ciphertext": b64(group.encrypt(plaintext)),
            "clientMessageId": client_message_id or uuid.uuid4().hex,
        }
        data = await self._api()(SEND_GROUP, {"input": request})
        result: dict[str, Any] = data["sendGroupMessage"]
        return result

    async def _join(self, conversation_id: str | None, welcome: bytes) -> None:
        if conversation_id is None:
            raise LookupError("a Welcome without its conversation")
        data = await self._api()(CONVERSATION, {"id": conversation_id})
        conversation = data["conversation"]
        group_id = unb64(conversation["groupId"])
        self.groups[conversation_id] = self.member.join(
            welcome, int(conversation["epoch"]), group_id
        )


def _users_named(extensions: dict[str, Any]) -> list[str]:
    """The users a MISMATCHED_DEVICES / STALE_DEVICES error names."""
    users: list[str] = []
    for key in ("missingDevices", "extraDevices", "staleDevices"):
        for entry in extensions.get(key) or []:
            user_id = entry.get("userId") if isinstance(entry, dict) else None
            if user_id and user_id not in users:
                users.append(user_id)
    return users
