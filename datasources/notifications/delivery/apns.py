"""Apple Push Notification service, HTTP/2 provider API with token auth, on httpx.

POST {base_url}/3/device/{token} over HTTP/2 (APNs refuses HTTP/1.1), authorized by
an ES256 JWT signed with the team's .p8 key: header {alg: ES256, kid: key id},
claims {iss: team id, iat}. Apple rejects a token older than an hour and answers
TooManyProviderTokenUpdates to one renewed more often than every 20 minutes, so
one token is reused for 50 minutes and then renewed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from datasources.notifications.delivery.push import (
    DeliveryResult,
    Outcome,
    PushMessage,
    PushResult,
    PushTarget,
)
from datasources.notifications.delivery.retry import parse_retry_after

TOKEN_REFRESH_AFTER = 50 * 60
TOKEN_MIN_AGE = 20 * 60
_HEX = re.compile(r"[0-9A-Fa-f]+")

Clock = Callable[[], float]


@dataclass(frozen=True)
class ApnsConfig:
    team_id: str
    key_id: str
    private_key: str  # PEM contents of the AuthKey_<key id>.p8 file
    topic: str = ""  # default bundle id, for devices registered without one
    base_url: str = "https://api.push.apple.com"
    # apns-expiration = now + this: APNs keeps trying an offline device that long.
    expiration_seconds: int = 24 * 3600
    timeout: float = 10.0

    @classmethod
    def from_key_file(cls, path: Path | str, **fields: Any) -> ApnsConfig:
        return cls(private_key=Path(path).read_text(), **fields)


class ApnsTokens:
    """The provider token: minted on first use, reused until 50 minutes old."""

    def __init__(self, team_id: str, key_id: str, private_key: str, clock: Clock) -> None:
        self.team_id = team_id
        self.key_id = key_id
        self._private_key = private_key
        self._clock = clock
        self._token = ""
        self._issued_at = 0.0

    def token(self) -> str:
        now = self._clock()
        if not self._token or now - self._issued_at >= TOKEN_REFRESH_AFTER:
            self._issued_at = now
            self._token = jwt.encode(
                {"iss": self.team_id, "iat": int(now)},
                self._private_key,
                algorithm="ES256",
                # Apple documents exactly {alg, kid}; typ=None drops PyJWT's "typ".
                headers={"kid": self.key_id, "typ": None},
            )
        return self._token

    def expired(self) -> bool:
        """APNs said ExpiredProviderToken: renew on next use if Apple allows a
        renewal now (20 minutes since the last); False when it does not."""
        if self._clock() - self._issued_at < TOKEN_MIN_AGE:
            return False
        self._token = ""
        return True


def apns_payload(message: PushMessage) -> dict[str, Any]:
    """The JSON body: `aps` as Apple documents it, the custom data beside it."""
    aps: dict[str, Any] = {
        "alert": {"title": message.title, "body": message.body},
        "sound": "default",
    }
    if message.badge is not None:
        aps["badge"] = message.badge
    if message.thread_id:
        aps["thread-id"] = message.thread_id
    payload: dict[str, Any] = {key: value for key, value in message.data.items() if key != "aps"}
    payload["aps"] = aps
    return payload


class ApnsSender:
    """PushSender for APNs. Pass `client` (it must have http2=True) to share the
    connection: Apple asks providers to keep their connections open."""

    def __init__(
        self,
        config: ApnsConfig,
        client: httpx.AsyncClient | None = None,
        *,
        clock: Clock = time.time,
    ) -> None:
        self.config = config
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(http2=True, timeout=config.timeout)
        self._clock = clock
        self.tokens = ApnsTokens(config.team_id, config.key_id, config.private_key, clock)

    async def send(self, device: PushTarget, message: PushMessage) -> PushResult:
        if not _HEX.fullmatch(device.token):
            # What APNs would answer; never put a malformed token into the path.
            return DeliveryResult(Outcome.UNREGISTERED, reason="BadDeviceToken")
        headers = {
            "authorization": f"bearer {self.tokens.token()}",
            "apns-topic": device.app_id or self.config.topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-expiration": str(int(self._clock()) + self.config.expiration_seconds),
        }
        if message.collapse_id:
            headers["apns-collapse-id"] = message.collapse_id
        url = f"{self.config.base_url.rstrip('/')}/3/device/{device.token}"
        try:
            response = await self._client.post(url, json=apns_payload(message), headers=headers)
        except httpx.TransportError as error:
            return DeliveryResult(Outcome.RETRY_LATER, reason=type(error).__name__)
        return self._classify(response)

    def _classify(self, response: httpx.Response) -> PushResult:
        status = response.status_code
        if status == 200:
            return DeliveryResult(
                Outcome.DELIVERED, status, provider_id=response.headers.get("apns-id", "")
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        reason = str(body.get("reason", "")) if isinstance(body, dict) else ""
        reason = reason or f"HTTP {status}"
        if status == 410 or (status == 400 and reason == "BadDeviceToken"):
            return DeliveryResult(Outcome.UNREGISTERED, status, reason)
        if status == 403 and reason == "ExpiredProviderToken" and self.tokens.expired():
            return DeliveryResult(Outcome.RETRY_LATER, status, reason)
        if status == 429 or status >= 500:
            wait = parse_retry_after(response.headers.get("retry-after"), self._clock())
            return DeliveryResult(Outcome.RETRY_LATER, status, reason, retry_after=wait)
        return DeliveryResult(Outcome.FAILED, status, reason)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
