"""Push senders against loopback providers that check each request the way FCM
HTTP v1 and APNs document it.

FCM: a starlette app under uvicorn (HTTP/1.1, as FCM also accepts) that is both
the OAuth2 token endpoint (it verifies the RS256 assertion with the service
account's public key) and messages:send (it accepts only the tokens it issued).
APNs: an HTTP/2-only server over TLS with ALPN h2 (tests/delivery_support.py), so
the sender's real HTTP/2 path runs; it verifies the ES256 provider token.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from datasources.notifications.delivery import (
    ApnsConfig,
    ApnsSender,
    DeliveryResult,
    FcmConfig,
    FcmSender,
    Outcome,
    PushMessage,
    PushRouter,
    PushTarget,
    RetryPolicy,
    ServiceAccount,
    with_retries,
)
from datasources.notifications.delivery.retry import parse_retry_after
from tests.delivery_support import FakeClock, H2Request, Http2Server, Reply, local_tls
from tests.realtime_support import live_server

PROJECT = "entativa-test"
CLIENT_EMAIL = "push@entativa-test.iam.gserviceaccount.com"
GOOGLE_KEY_ID = "5f1c0ffee5f1c0ffee"
TEAM_ID = "TEAM123456"
APNS_KEY_ID = "KEY7890ABC"
BUNDLE = "com.entativa.vignette"
DEVICE = "a" * 32 + "0123456789abcdef" * 2

MESSAGE = PushMessage(
    title="Vignette",
    body="Ann and 2 others liked your post",
    data={"notificationId": "42", "type": "LIKE"},
    badge=3,
    collapse_id="like:post:7",
    thread_id="post:7",
)


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def google_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def apple_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(float(int(time.time())))


async def recorded_sleep(delays: list[float], seconds: float) -> None:
    delays.append(seconds)


# ── FCM ──────────────────────────────────────────────────────────────────


@dataclass
class FakeFcm:
    """Google's token endpoint and FCM's messages:send on one loopback server."""

    public_key: Any
    base_url: str = ""
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    sends: list[dict[str, Any]] = field(default_factory=list)
    replies: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    async def token(self, request: Request) -> JSONResponse:
        form = dict(await request.form())
        assertion = str(form.get("assertion", ""))
        record: dict[str, Any] = {"form": form, "content_type": request.headers["content-type"]}
        self.exchanges.append(record)
        try:
            record["header"] = jwt.get_unverified_header(assertion)
            # Times are checked exactly by the tests against their clock.
            record["claims"] = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=self.token_uri,
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError as error:
            return JSONResponse({"error": "invalid_grant", "error_description": str(error)}, 400)
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        token = f"ya29.test-{len(self.issued) + 1}"
        self.issued.append(token)
        return JSONResponse({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    async def v1(self, request: Request) -> JSONResponse:
        self.sends.append(
            {
                "method": request.method,
                "path": request.url.path,
                "headers": dict(request.headers),
                "body": json.loads(await request.body()),
            }
        )
        if request.headers.get("authorization") not in {f"Bearer {t}" for t in self.issued}:
            error = {"code": 401, "message": "bad credentials", "status": "UNAUTHENTICATED"}
            return JSONResponse({"error": error}, 401)
        if self.replies:
            status, headers, body = self.replies.pop(0)
            return JSONResponse(body, status, headers=headers)
        return JSONResponse({"name": f"projects/{PROJECT}/messages/0:{len(self.sends)}"})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route("/v1/{rest:path}", self.v1, methods=["POST"]),
            ]
        )


def fcm_error(code: int, status: str, error_code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": "error", "status": status}
    if error_code:
        fcm_error_type = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
        error["details"] = [{"@type": fcm_error_type, "errorCode": error_code}]
    return {"error": error}


@pytest.fixture
async def fcm(google_key: rsa.RSAPrivateKey) -> AsyncIterator[FakeFcm]:
    provider = FakeFcm(public_key=google_key.public_key())
    async with live_server(provider.app()) as address:
        provider.base_url = f"http://{address}"
        yield provider


@pytest.fixture
async def fcm_sender(
    fcm: FakeFcm, google_key: rsa.RSAPrivateKey, clock: FakeClock
) -> AsyncIterator[FcmSender]:
    # As the key file Google hands out, with its token_uri pointing at the loopback.
    account = ServiceAccount.from_info(
        {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": GOOGLE_KEY_ID,
            "private_key": pem(google_key),
            "client_email": CLIENT_EMAIL,
            "token_uri": fcm.token_uri,
        }
    )
    sender = FcmSender(FcmConfig(credentials=account, base_url=fcm.base_url), clock=clock)
    yield sender
    await sender.aclose()


def check_assertion(exchange: dict[str, Any], fcm: FakeFcm, issued_at: float) -> None:
    assert exchange["content_type"] == "application/x-www-form-urlencoded"
    assert exchange["form"]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert exchange["header"] == {"alg": "RS256", "typ": "JWT", "kid": GOOGLE_KEY_ID}
    assert exchange["claims"] == {
        "iss": CLIENT_EMAIL,
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": fcm.token_uri,
        "iat": int(issued_at),
        "exp": int(issued_at) + 3600,
    }


async def test_fcm_sends_the_documented_request(
    fcm: FakeFcm, fcm_sender: FcmSender, clock: FakeClock
) -> None:
    result = await fcm_sender.send(PushTarget("FCM", "fcm-token-1", "android"), MESSAGE)

    assert result == DeliveryResult(
        Outcome.DELIVERED, 200, provider_id=f"projects/{PROJECT}/messages/0:1"
    )
    [exchange] = fcm.exchanges
    check_assertion(exchange, fcm, clock.now)
    [send] = fcm.sends
    assert send["method"] == "POST"
    assert send["path"] == f"/v1/projects/{PROJECT}/messages:send"
    assert send["headers"]["authorization"] == "Bearer ya29.test-1"
    assert send["headers"]["content-type"] == "application/json"
    assert send["body"] == {
        "message": {
            "token": "fcm-token-1",
            "notification": {"title": "Vignette", "body": "Ann and 2 others liked your post"},
            "data": {"notificationId": "42", "type": "LIKE"},
            "android": {
                "collapse_key": "like:post:7",
                "notification": {"tag": "like:post:7", "notification_count": 3},
            },
            "apns": {
                "headers": {"apns-collapse-id": "like:post:7"},
                "payload": {"aps": {"sound": "default", "badge": 3, "thread-id": "post:7"}},
            },
        }
    }


async def test_fcm_minimal_message_has_no_empty_sections(
    fcm: FakeFcm, fcm_sender: FcmSender
) -> None:
    await fcm_sender.send(PushTarget("FCM", "t"), PushMessage(title="Socialink", body="Hi"))
    assert fcm.sends[0]["body"] == {
        "message": {
            "token": "t",
            "notification": {"title": "Socialink", "body": "Hi"},
            "apns": {"payload": {"aps": {"sound": "default"}}},
        }
    }


async def test_fcm_access_token_is_exchanged_once_and_renewed_before_expiry(
    fcm: FakeFcm, fcm_sender: FcmSender, clock: FakeClock
) -> None:
    device = PushTarget("FCM", "fcm-token-1", "android")
    start = clock.now
    for _ in range(3):
        assert (await fcm_sender.send(device, MESSAGE)).delivered
    # Concurrent sends share the cached token; none starts its own exchange.
    results = await asyncio.gather(*(fcm_sender.send(device, MESSAGE) for _ in range(5)))
    assert all(r.delivered for r in results)
    clock.advance(3599 - 300 - 1)  # still more than five minutes left
    assert (await fcm_sender.send(device, MESSAGE)).delivered
    assert len(fcm.exchanges) == 1
    assert {s["headers"]["authorization"] for s in fcm.sends} == {"Bearer ya29.test-1"}

    clock.advance(2)  # within five minutes of expiry: renewed
    assert (await fcm_sender.send(device, MESSAGE)).delivered
    assert len(fcm.exchanges) == 2
    check_assertion(fcm.exchanges[0], fcm, start)
    check_assertion(fcm.exchanges[1], fcm, clock.now)
    assert fcm.sends[-1]["headers"]["authorization"] == "Bearer ya29.test-2"


@pytest.mark.parametrize(
    "status, body, outcome",
    [
        (404, fcm_error(404, "NOT_FOUND", "UNREGISTERED"), Outcome.UNREGISTERED),
        (404, fcm_error(404, "NOT_FOUND"), Outcome.UNREGISTERED),
        (400, fcm_error(400, "INVALID_ARGUMENT", "UNREGISTERED"), Outcome.UNREGISTERED),
        (400, fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), Outcome.FAILED),
        (403, fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), Outcome.FAILED),
        (500, fcm_error(500, "INTERNAL", "INTERNAL"), Outcome.RETRY_LATER),
    ],
)
async def test_fcm_errors_are_classified(
    fcm: FakeFcm,
    fcm_sender: FcmSender,
    status: int,
    body: dict[str, Any],
    outcome: Outcome,
) -> None:
    fcm.replies.append((status, {}, body))
    result = await fcm_sender.send(PushTarget("FCM", "gone"), MESSAGE)
    assert (result.outcome, result.status) == (outcome, status)


async def test_fcm_429_and_503_are_retried_then_delivered(
    fcm: FakeFcm, fcm_sender: FcmSender
) -> None:
    fcm.replies += [
        (429, {"Retry-After": "7"}, fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")),
        (503, {}, fcm_error(503, "UNAVAILABLE", "UNAVAILABLE")),
    ]
    delays: list[float] = []
    result = await with_retries(
        lambda: fcm_sender.send(PushTarget("FCM", "fcm-token-1"), MESSAGE),
        RetryPolicy(attempts=4, first=1.0, cap=30.0),
        sleep=lambda s: recorded_sleep(delays, s),
        rand=lambda: 0.0,  # no jitter: the exact backoff
    )
    assert result.delivered
    assert len(fcm.sends) == 3
    assert [s["body"] for s in fcm.sends] == [fcm.sends[0]["body"]] * 3
    # Retry-After honoured (7 s, above the 1 s backoff), then the 2nd backoff step.
    assert delays == [7.0, 2.0]


async def test_fcm_refused_access_token_is_exchanged_again(
    fcm: FakeFcm, fcm_sender: FcmSender
) -> None:
    device = PushTarget("FCM", "fcm-token-1")
    assert (await fcm_sender.send(device, MESSAGE)).delivered
    fcm.issued.clear()  # Google revoked it
    first = await fcm_sender.send(device, MESSAGE)
    assert (first.outcome, first.status) == (Outcome.RETRY_LATER, 401)
    assert (await fcm_sender.send(device, MESSAGE)).delivered
    assert len(fcm.exchanges) == 2


async def test_fcm_bad_service_account_key_fails_without_sending(
    fcm: FakeFcm, fcm_sender: FcmSender
) -> None:
    fcm.public_key = rsa.generate_private_key(65537, 2048).public_key()  # not our key
    result = await fcm_sender.send(PushTarget("FCM", "t"), MESSAGE)
    assert (result.outcome, result.status) == (Outcome.FAILED, 400)
    assert "invalid_grant" in result.reason
    assert fcm.sends == []


# ── APNs ─────────────────────────────────────────────────────────────────


@dataclass
class FakeApns:
    public_key: Any
    client_tls: ssl.SSLContext  # trusts the loopback server's certificate
    url: str = ""
    requests: list[H2Request] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)

    def handle(self, request: H2Request) -> Reply:
        self.requests.append(request)
        if self.replies:
            return self.replies.pop(0)
        return 200, {"apns-id": f"0000-{len(self.requests)}"}, b""


def apns_reason(reason: str, **extra: Any) -> bytes:
    return json.dumps({"reason": reason, **extra}).encode()


@pytest.fixture
async def apns(apple_key: ec.EllipticCurvePrivateKey, tmp_path: Path) -> AsyncIterator[FakeApns]:
    tls = local_tls(tmp_path, alpn=["h2"])  # like APNs: HTTP/2 or nothing
    provider = FakeApns(public_key=apple_key.public_key(), client_tls=tls.client)
    async with Http2Server(provider.handle, tls.server) as server:
        provider.url = server.url
        yield provider


@pytest.fixture
async def apns_sender(
    apns: FakeApns, apple_key: ec.EllipticCurvePrivateKey, clock: FakeClock
) -> AsyncIterator[ApnsSender]:
    client = httpx.AsyncClient(http2=True, verify=apns.client_tls, timeout=10)
    config = ApnsConfig(
        team_id=TEAM_ID,
        key_id=APNS_KEY_ID,
        private_key=pem(apple_key),
        topic=BUNDLE,
        base_url=apns.url,
    )
    sender = ApnsSender(config, client, clock=clock)
    yield sender
    await client.aclose()


def provider_token(request: H2Request, public_key: Any) -> tuple[str, dict[str, Any]]:
    """The bearer JWT of a request, checked as APNs checks it; returns it and its claims."""
    scheme, _, token = request.headers["authorization"].partition(" ")
    assert scheme == "bearer"
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": APNS_KEY_ID}
    claims = jwt.decode(token, public_key, algorithms=["ES256"], options={"verify_iat": False})
    return token, claims


async def test_apns_sends_the_documented_request_over_http2(
    apns: FakeApns, apns_sender: ApnsSender, clock: FakeClock
) -> None:
    result = await apns_sender.send(PushTarget("APNS", DEVICE, "ios", BUNDLE), MESSAGE)

    assert result == DeliveryResult(Outcome.DELIVERED, 200, provider_id="0000-1")
    [request] = apns.requests
    assert request.alpn == "h2"
    assert request.headers[":method"] == "POST"
    assert request.headers[":scheme"] == "https"
    assert request.headers[":path"] == f"/3/device/{DEVICE}"
    _, claims = provider_token(request, apns.public_key)
    assert claims == {"iss": TEAM_ID, "iat": int(clock.now)}
    assert request.headers["apns-topic"] == BUNDLE
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-priority"] == "10"
    assert request.headers["apns-expiration"] == str(int(clock.now) + 24 * 3600)
    assert request.headers["apns-collapse-id"] == "like:post:7"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {
        "aps": {
            "alert": {"title": "Vignette", "body": "Ann and 2 others liked your post"},
            "badge": 3,
            "sound": "default",
            "thread-id": "post:7",
        },
        "notificationId": "42",
        "type": "LIKE",
    }


async def test_apns_device_without_bundle_uses_configured_topic_and_no_collapse_id(
    apns: FakeApns, apns_sender: ApnsSender
) -> None:
    message = PushMessage(title="Socialink", body="Hi", data={"aps": "not allowed"})
    assert (await apns_sender.send(PushTarget("APNS", DEVICE), message)).delivered
    [request] = apns.requests
    assert request.headers["apns-topic"] == BUNDLE
    assert "apns-collapse-id" not in request.headers
    assert json.loads(request.body) == {
        "aps": {"alert": {"title": "Socialink", "body": "Hi"}, "sound": "default"}
    }


@pytest.mark.parametrize(
    "status, reason, outcome",
    [
        (410, "Unregistered", Outcome.UNREGISTERED),
        (410, "ExpiredToken", Outcome.UNREGISTERED),
        (400, "BadDeviceToken", Outcome.UNREGISTERED),
        (400, "BadCollapseId", Outcome.FAILED),
        (403, "InvalidProviderToken", Outcome.FAILED),
        (413, "PayloadTooLarge", Outcome.FAILED),
        (429, "TooManyRequests", Outcome.RETRY_LATER),
        (500, "InternalServerError", Outcome.RETRY_LATER),
        (503, "ServiceUnavailable", Outcome.RETRY_LATER),
    ],
)
async def test_apns_errors_are_classified(
    apns: FakeApns, apns_sender: ApnsSender, status: int, reason: str, outcome: Outcome
) -> None:
    apns.replies.append((status, {"content-type": "application/json"}, apns_reason(reason)))
    result = await apns_sender.send(PushTarget("APNS", DEVICE), MESSAGE)
    assert result == DeliveryResult(outcome, status, reason)


async def test_apns_malformed_token_is_unregistered_without_a_request(
    apns: FakeApns, apns_sender: ApnsSender
) -> None:
    result = await apns_sender.send(PushTarget("APNS", "../../1/admin?x="), MESSAGE)
    assert result.outcome is Outcome.UNREGISTERED
    assert apns.requests == []


async def test_apns_429_and_503_are_retried_then_delivered(
    apns: FakeApns, apns_sender: ApnsSender
) -> None:
    apns.replies += [
        (429, {"retry-after": "3"}, apns_reason("TooManyRequests")),
        (503, {}, apns_reason("ServiceUnavailable")),
    ]
    delays: list[float] = []
    result = await with_retries(
        lambda: apns_sender.send(PushTarget("APNS", DEVICE), MESSAGE),
        RetryPolicy(attempts=3, first=0.5, cap=10.0, jitter=0.5),
        sleep=lambda s: recorded_sleep(delays, s),
        rand=lambda: 1.0,  # the most jitter: half the backoff
    )
    assert result.delivered
    assert [r.headers[":path"] for r in apns.requests] == [f"/3/device/{DEVICE}"] * 3
    assert delays == [3.0, 0.5]


async def test_apns_provider_token_reused_for_50_minutes_then_renewed(
    apns: FakeApns, apns_sender: ApnsSender, clock: FakeClock
) -> None:
    device = PushTarget("APNS", DEVICE)
    start = int(clock.now)
    for minutes in (0, 19, 21, 49):
        clock.now = start + minutes * 60
        assert (await apns_sender.send(device, MESSAGE)).delivered
    tokens = [provider_token(r, apns.public_key) for r in apns.requests]
    assert len({token for token, _ in tokens}) == 1
    assert tokens[0][1] == {"iss": TEAM_ID, "iat": start}

    clock.now = start + 50 * 60
    assert (await apns_sender.send(device, MESSAGE)).delivered
    clock.now = start + 65 * 60
    assert (await apns_sender.send(device, MESSAGE)).delivered
    renewed = [provider_token(r, apns.public_key) for r in apns.requests[4:]]
    assert renewed[0][0] != tokens[0][0]
    assert renewed[0][1] == {"iss": TEAM_ID, "iat": start + 50 * 60}
    assert renewed[1][0] == renewed[0][0]


async def test_apns_expired_provider_token_renewed_only_after_20_minutes(
    apns: FakeApns, apns_sender: ApnsSender, clock: FakeClock
) -> None:
    device = PushTarget("APNS", DEVICE)
    expired: Reply = (403, {}, apns_reason("ExpiredProviderToken"))
    apns.replies.append(expired)
    clock.advance(5 * 60)  # the token is minted now; renewing at +5 min would be refused
    early = await apns_sender.send(device, MESSAGE)
    assert early.outcome is Outcome.FAILED

    apns.replies.append(expired)
    clock.advance(20 * 60)
    late = await apns_sender.send(device, MESSAGE)
    assert late.outcome is Outcome.RETRY_LATER
    assert (await apns_sender.send(device, MESSAGE)).delivered
    first, _, last = (provider_token(r, apns.public_key)[1] for r in apns.requests)
    assert last["iat"] == int(clock.now) and first["iat"] == int(clock.now) - 20 * 60


# ── routing and retry policy ─────────────────────────────────────────────


async def test_router_sends_each_device_to_its_provider(
    fcm: FakeFcm, fcm_sender: FcmSender, apns: FakeApns, apns_sender: ApnsSender
) -> None:
    router = PushRouter({"FCM": fcm_sender, "APNS": apns_sender})
    assert (await router.send(PushTarget("FCM", "f", "android"), MESSAGE)).delivered
    assert (await router.send(PushTarget("APNS", DEVICE), MESSAGE)).delivered
    assert (len(fcm.sends), len(apns.requests)) == (1, 1)
    only_fcm = PushRouter({"FCM": fcm_sender})
    result = await only_fcm.send(PushTarget("APNS", DEVICE), MESSAGE)
    assert result.outcome is Outcome.FAILED


async def test_retries_stop_after_the_attempts_and_on_long_retry_after() -> None:
    calls: list[int] = []

    async def busy(retry_after: float | None) -> DeliveryResult:
        calls.append(1)
        return DeliveryResult(Outcome.RETRY_LATER, 503, retry_after=retry_after)

    delays: list[float] = []
    policy = RetryPolicy(attempts=5, first=1.0, cap=6.0)
    result = await with_retries(
        lambda: busy(None), policy, sleep=lambda s: recorded_sleep(delays, s), rand=lambda: 0.0
    )
    assert result.outcome is Outcome.RETRY_LATER and len(calls) == 5
    assert delays == [1.0, 2.0, 4.0, 6.0]  # doubling, capped

    calls.clear()
    delays.clear()
    # Longer than the cap: handed back for the worker to requeue, not slept through.
    result = await with_retries(
        lambda: busy(3600.0), policy, sleep=lambda s: recorded_sleep(delays, s)
    )
    assert (result.retry_after, len(calls), delays) == (3600.0, 1, [])


def test_jitter_spreads_delays_below_the_backoff() -> None:
    policy = RetryPolicy(first=2.0, cap=60.0, jitter=0.5)
    assert policy.delay(2, lambda: 0.0) == 8.0
    assert policy.delay(2, lambda: 1.0) == 4.0
    assert policy.delay(10, lambda: 0.0) == 60.0


def test_retry_after_as_seconds_or_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:15:20 GMT", now) == 120.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
