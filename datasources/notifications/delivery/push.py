"""What a push provider is asked to deliver, and what it answered.

Senders (`fcm.FcmSender`, `apns.ApnsSender`) keep one contract, `PushSender`: they
never raise for a provider's answer or a network failure, they classify it, because
the notification worker acts on the class (remove the device, requeue, give up),
not on each provider's error vocabulary.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, Protocol

Provider = Literal["FCM", "APNS"]
Platform = Literal["ios", "android", "web"]


@dataclass(frozen=True)
class PushTarget:
    """One registered device: its provider, its token, and which app it runs."""

    provider: Provider
    token: str
    platform: Platform = "ios"
    # The app's bundle id (iOS: the APNs topic) or package name (Android);
    # empty: the sender's configured default.
    app_id: str = ""


@dataclass(frozen=True)
class PushMessage:
    """A notification as every provider can show it.

    `data` travels to the app untouched (FCM allows only string values, so it is
    str → str everywhere). `collapse_id`: a newer message with the same id replaces
    the one still shown or queued (a like group that grew). `thread_id`: messages
    shown together (iOS thread-id).
    """

    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)
    badge: int | None = None
    collapse_id: str | None = None
    thread_id: str | None = None


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    UNREGISTERED = "unregistered"  # the token is dead: remove the device
    RETRY_LATER = "retry_later"  # throttled or the provider is down: try again
    FAILED = "failed"  # this message will never go through: do not retry


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one delivery (push or email).

    `retry_after`: seconds the provider asked us to wait (RETRY_LATER only; None
    when it did not say). `status`: the provider's HTTP/SMTP status, None when the
    request never got an answer. `reason`: the provider's error code, for logs.
    `provider_id`: the provider's id of the delivered message (FCM message name,
    apns-id, Message-ID).
    """

    outcome: Outcome
    status: int | None = None
    reason: str = ""
    retry_after: float | None = None
    provider_id: str = ""

    @property
    def delivered(self) -> bool:
        return self.outcome is Outcome.DELIVERED


PushResult = DeliveryResult


class PushSender(Protocol):
    async def send(self, device: PushTarget, message: PushMessage) -> PushResult:
        """Deliver one message to one device, once (no retries inside: see
        `retry.with_retries`). Never raises for what the provider or the network did."""
        ...

    async def aclose(self) -> None:
        """Close the connections this sender opened."""
        ...


class PushRouter:
    """One PushSender over the configured providers: each device goes to its own.
    A device of a provider that is not configured fails (it cannot be reached)."""

    def __init__(self, senders: dict[Provider, PushSender]) -> None:
        self._senders = senders

    async def send(self, device: PushTarget, message: PushMessage) -> PushResult:
        sender = self._senders.get(device.provider)
        if sender is None:
            return DeliveryResult(Outcome.FAILED, reason=f"{device.provider} is not configured")
        return await sender.send(device, message)

    async def aclose(self) -> None:
        for sender in self._senders.values():
            await sender.aclose()
