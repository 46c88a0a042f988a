"""The reference end-to-end encryption client (issue 8).

Built on `x3dh` and `doubleratchet` (Signal's pairwise protocols), `xeddsa`
(signatures by the Curve25519 identity key), `cryptography` (ML-KEM-1024 for
the KEM prekey) and `mls_rs_uniffi` (RFC 9420 MLS groups: AWS Labs' mls-rs).
It talks to the server only through the public GraphQL API (`transport`), and
never imports server code: the server is a relay that must not be able to
read what this client sends.
"""

from clients.messaging.client import Device, Message
from clients.messaging.keys import Identity
from clients.messaging.transport import Api, GraphQLError, Subscription

__all__ = ["Api", "Device", "GraphQLError", "Identity", "Message", "Subscription"]
