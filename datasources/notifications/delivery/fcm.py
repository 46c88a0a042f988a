"""Firebase Cloud Messaging, HTTP v1 API, on httpx.

POST {base_url}/v1/projects/{project_id}/messages:send with a Google OAuth2 access
token. The token comes from the service-account key by the JWT-bearer grant
(RFC 7523): an RS256 assertion signed with the key, exchanged at the key's
token_uri, and cached until shortly before it expires, so a burst of sends costs
one exchange. The base URL is a setting so the tests run a loopback server.
"""

from __future__ import annotations

import asyncio
import json
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

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
ASSERTION_LIFETIME = 3600  # Google accepts assertions valid for at most one hour
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

Clock = Callable[[], float]


@dataclass(frozen=True)
class ServiceAccount:
    """The fields of a Google service-account key file that the token flow uses."""

    client_email: str
    private_key: str  # PEM, PKCS#8
    private_key_id: str = ""
    token_uri: str = GOOGLE_TOKEN_URI
    project_id: str = ""

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> ServiceAccount:
        return cls(
            client_email=info["client_email"],
            private_key=info["private_key"],
            private_key_id=info.get("private_key_id", ""),
            token_uri=info.get("token_uri") or GOOGLE_TOKEN_URI,
            project_id=info.get("project_id", ""),
        )

    @classmethod
    def from_file(cls, path: Path | str) -> ServiceAccount:
        return cls.from_info(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class FcmConfig:
    credentials: ServiceAccount
    project_id: str = ""  # empty: the key's project_id
    base_url: str = "https://fcm.googleapis.com"
    timeout: float = 10.0

    @property
    def send_url(self) -> str:
        project = self.project_id or self.credentials.project_id
        return f"{self.base_url.rstrip('/')}/v1/projects/{project}/messages:send"


class TokenExchangeError(Exception):
    def __init__(self, reason: str, status: int | None, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.transient = transient


class GoogleAccessTokens:
    """Access tokens for one service account, exchanged once and reused until
    `margin` seconds before they expire. Concurrent callers share one exchange."""

    def __init__(
        self,
        account: ServiceAccount,
        client: httpx.AsyncClient,
        *,
        scope: str = FCM_SCOPE,
        clock: Clock = time.time,
        margin: float = 300.0,
    ) -> None:
        self.account = account
        self.scope = scope
        self._client = client
        self._clock = clock
        self._margin = margin
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def assertion(self, now: float) -> str:
        """The signed JWT the token endpoint exchanges for an access token."""
        issued = int(now)
        claims = {
            "iss": self.account.client_email,
            "scope": self.scope,
            "aud": self.account.token_uri,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME,
        }
        headers = {"kid": self.account.private_key_id} if self.account.private_key_id else None
        return jwt.encode(claims, self.account.private_key, algorithm="RS256", headers=headers)

    async def token(self) -> str:
        async with self._lock:
            now = self._clock()
            if self._token and now < self._expires_at - self._margin:
                return self._token
            self._token, lifetime = await self._exchange(now)
            self._expires_at = now + lifetime
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (the API refused it)."""
        self._token = ""

    async def _exchange(self, now: float) -> tuple[str, float]:
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": self.assertion(now)}
        try:
            response = await self._client.post(self.account.token_uri, data=form)
        except httpx.TransportError as error:
            raise TokenExchangeError(type(error).__name__, None, transient=True) from error
        if response.status_code != 200:
            transient = response.status_code == 429 or response.status_code >= 500
            reason = _json(response).get("error", "") or f"HTTP {response.status_code}"
            raise TokenExchangeError(str(reason), response.status_code, transient)
        payload = _json(response)
        token = payload.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenExchangeError("no access_token", response.status_code, transient=True)
        return token, float(payload.get("expires_in", 3600))


def fcm_message(device: PushTarget, message: PushMessage) -> dict[str, Any]:
    """The request body of messages:send for one device (FCM v1 `Message`)."""
    body: dict[str, Any] = {
        "token": device.token,
        "notification": {"title": message.title, "body": message.body},
    }
    if message.data:
        body["data"] = {str(key): str(value) for key, value in message.data.items()}
    android: dict[str, Any] = {}
    android_notification: dict[str, Any] = {}
    if message.collapse_id:
        android["collapse_key"] = message.collapse_id
        android_notification["tag"] = message.collapse_id
    if message.badge is not None:
        android_notification["notification_count"] = message.badge
    if android_notification:
        android["notification"] = android_notification
    if android:
        body["android"] = android
    aps: dict[str, Any] = {"sound": "default"}
    if message.badge is not None:
        aps["badge"] = message.badge
    if message.thread_id:
        aps["thread-id"] = message.thread_id
    apns: dict[str, Any] = {"payload": {"aps": aps}}
    if message.collapse_id:
        apns["headers"] = {"apns-collapse-id": message.collapse_id}
    body["apns"] = apns
    return {"message": body}


class FcmSender:
    """PushSender for FCM. Pass `client` to share a connection pool (or, in tests,
    to point at a loopback server through `config.base_url`)."""

    def __init__(
        self,
        config: FcmConfig,
        client: httpx.AsyncClient | None = None,
        *,
        clock: Clock = time.time,
    ) -> None:
        self.config = config
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(http2=True, timeout=config.timeout)
        self._clock = clock
        self.tokens = GoogleAccessTokens(config.credentials, self._client, clock=clock)

    async def send(self, device: PushTarget, message: PushMessage) -> PushResult:
        try:
            token = await self.tokens.token()
        except TokenExchangeError as error:
            outcome = Outcome.RETRY_LATER if error.transient else Outcome.FAILED
            return DeliveryResult(outcome, status=error.status, reason=f"oauth2: {error.reason}")
        try:
            response = await self._client.post(
                self.config.send_url,
                json=fcm_message(device, message),
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.TransportError as error:
            return DeliveryResult(Outcome.RETRY_LATER, reason=type(error).__name__)
        return self._classify(response)

    def _classify(self, response: httpx.Response) -> PushResult:
        status = response.status_code
        payload = _json(response)
        if status == 200:
            return DeliveryResult(Outcome.DELIVERED, status, provider_id=payload.get("name", ""))
        error = payload.get("error")
        if not isinstance(error, dict):
            error = {}
        code = _fcm_error_code(error) or str(error.get("status", "")) or f"HTTP {status}"
        if code == "UNREGISTERED" or status == 404:
            return DeliveryResult(Outcome.UNREGISTERED, status, code)
        if status == 401 and code != "THIRD_PARTY_AUTH_ERROR":
            # Our access token was refused (revoked, or the clock ran ahead of the
            # cache): the next attempt exchanges a fresh one.
            self.tokens.invalidate()
            return DeliveryResult(Outcome.RETRY_LATER, status, code)
        if status == 429 or status >= 500:
            wait = parse_retry_after(response.headers.get("retry-after"), self._clock())
            return DeliveryResult(Outcome.RETRY_LATER, status, code, retry_after=wait)
        return DeliveryResult(Outcome.FAILED, status, code)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()


def _fcm_error_code(error: dict[str, Any]) -> str:
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE:
            return str(detail.get("errorCode", ""))
    return ""


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}
