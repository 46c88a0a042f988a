"""Delivery of notifications outside the app: push (FCM, APNs) and email (SMTP).

Only the notification worker calls these, never a request: a send can take
seconds and be retried for minutes. Each sender takes a config dataclass (the
server builds it from settings) and classifies every answer into a
`DeliveryResult` the worker acts on: DELIVERED, UNREGISTERED (remove the device),
RETRY_LATER (requeue; `retry.with_retries` retries in process first) or FAILED.
"""

from datasources.notifications.delivery.apns import ApnsConfig, ApnsSender
from datasources.notifications.delivery.fcm import FcmConfig, FcmSender, ServiceAccount
from datasources.notifications.delivery.mail import (
    EmailNotification,
    EmailSender,
    RenderedEmail,
    SmtpConfig,
    render_digest,
    render_notification,
)
from datasources.notifications.delivery.push import (
    DeliveryResult,
    Outcome,
    PushMessage,
    PushResult,
    PushRouter,
    PushSender,
    PushTarget,
)
from datasources.notifications.delivery.retry import RetryPolicy, with_retries

__all__ = [
    "ApnsConfig",
    "ApnsSender",
    "DeliveryResult",
    "EmailNotification",
    "EmailSender",
    "FcmConfig",
    "FcmSender",
    "Outcome",
    "PushMessage",
    "PushResult",
    "PushRouter",
    "PushSender",
    "PushTarget",
    "RenderedEmail",
    "RetryPolicy",
    "ServiceAccount",
    "SmtpConfig",
    "render_digest",
    "render_notification",
    "with_retries",
]
