"""Notification email through a real SMTP server in-process (aiosmtpd on a free
127.0.0.1 port): what arrives is parsed back and checked as a mail client sees it."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from datasources.notifications.delivery import (
    EmailNotification,
    EmailSender,
    Outcome,
    SmtpConfig,
    render_digest,
    render_notification,
)
from tests.delivery_support import local_tls
from tests.realtime_support import free_port

SENT_AT = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
FROM = "Vignette <notifications@vignette.example>"
TO = "bob@example.com"
EVIL_NAME = '<script>alert("x")</script> & Eve'


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it accepts, and can be told to refuse."""

    received: list[dict[str, Any]] = field(default_factory=list)
    data_reply: str = "250 Message accepted for delivery"
    rcpt_reply: str = ""

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_reply.startswith("250"):
            self.received.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "tls": session.ssl is not None,
                    "message": email.message_from_bytes(
                        envelope.original_content, policy=email.policy.default
                    ),
                }
            )
        return self.data_reply


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def sender(port: int, **options: Any) -> EmailSender:
    config = SmtpConfig(host="127.0.0.1", port=port, sender=FROM, starttls=False)
    return EmailSender(replace(config, **options), clock=lambda: SENT_AT)


def parts(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    return plain.get_content(), html.get_content()


def only_message(inbox: Inbox) -> EmailMessage:
    [received] = inbox.received
    assert received["mail_from"] == "notifications@vignette.example"
    assert received["rcpt_tos"] == [TO]
    message: EmailMessage = received["message"]
    return message


async def test_single_notification_arrives_with_headers_and_both_parts(
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    rendered = render_notification(
        EmailNotification(
            summary="Zoë commented on your post",
            url="https://vignette.example/p/7?c=3&x=1",
            preview="Love <this> & that",
            occurred_at=SENT_AT,
        ),
        recipient_name="Bob",
        platform="Vignette",
        zone=ZoneInfo("America/New_York"),
    )
    result = await sender(port).send(TO, rendered)

    assert result.outcome is Outcome.DELIVERED
    message = only_message(inbox)
    assert message["From"] == FROM
    assert message["To"] == TO
    assert message["Subject"] == "Zoë commented on your post"
    assert parsedate_to_datetime(message["Date"]) == SENT_AT
    assert message["Message-ID"] == result.provider_id
    assert message["Message-ID"].startswith("<")
    assert message["Message-ID"].endswith("@vignette.example>")
    plain, html = parts(message)
    assert "Hi Bob," in plain
    assert "- Zoë commented on your post" in plain
    assert '"Love <this> & that"' in plain
    assert "26 Nov 2026, 09:30 EST" in plain  # the reader's time zone
    assert "https://vignette.example/p/7?c=3&x=1" in plain
    assert html.startswith("<!DOCTYPE html>")
    assert '<a href="https://vignette.example/p/7?c=3&amp;x=1"' in html
    assert "Zoë commented on your post</a>" in html
    assert "Love &lt;this&gt; &amp; that" in html
    assert "26 Nov 2026, 09:30 EST" in html


async def test_user_supplied_names_are_escaped_in_html_and_kept_off_headers(
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    rendered = render_notification(
        EmailNotification(
            summary=f"{EVIL_NAME}\r\nBcc: victim@example.com liked your post",
            url='javascript:alert("x")',
        ),
        recipient_name="<b>Bob</b>",
        platform="Vignette",
    )
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert (await sender(port).send(TO, rendered)).delivered

    message = only_message(inbox)  # the injected Bcc added no recipient
    assert message["Bcc"] is None
    # strip(): the stdlib folds this subject right after "Subject:" (still one line).
    assert message["Subject"].strip() == (
        '<script>alert("x")</script> & Eve Bcc: victim@example.com liked your post'
    )
    plain, html = parts(message)
    assert "<script>" not in html and "<b>Bob</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Eve" in html
    assert "Hi &lt;b&gt;Bob&lt;/b&gt;," in html
    assert "javascript:" not in html and "javascript:" not in plain
    assert EVIL_NAME in plain  # the text part shows the name as written


async def test_digest_lists_every_grouped_notification_in_order(
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    items = [
        EmailNotification(
            summary=f"{EVIL_NAME} and 5 others liked your post",
            url="https://vignette.example/p/1",
            occurred_at=datetime(2026, 11, 26, 13, 0, tzinfo=UTC),
        ),
        EmailNotification(
            summary="Ann started following you",
            url="https://vignette.example/u/ann",
            occurred_at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
        ),
        EmailNotification(
            summary="Carl replied to your comment",
            preview="Agreed!",
            url="https://vignette.example/p/2?c=9",
            occurred_at=datetime(2026, 11, 25, 23, 59, tzinfo=UTC),
        ),
    ]
    rendered = render_digest(
        items,
        recipient_name="Bob",
        platform="Vignette",
        zone=ZoneInfo("Europe/Paris"),
        settings_url="https://vignette.example/settings/notifications",
    )
    assert (await sender(port).send(TO, rendered)).delivered

    message = only_message(inbox)
    assert message["Subject"] == "3 new notifications on Vignette"
    plain, html = parts(message)
    summaries = [
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Eve and 5 others liked your post",
        "Ann started following you",
        "Carl replied to your comment",
    ]
    positions = [html.index(s) for s in summaries]
    assert positions == sorted(positions)
    assert html.count("<li ") == 3
    assert "<script>" not in html
    assert [line for line in plain.splitlines() if line.startswith("- ")] == [
        f"- {item.summary}" for item in items
    ]
    assert "26 Nov 2026, 00:59 CET" in plain  # Carl's reply, in Paris time
    assert "&ldquo;Agreed!&rdquo;" in html
    assert 'href="https://vignette.example/settings/notifications"' in html
    assert "https://vignette.example/settings/notifications" in plain


def test_digest_of_one_says_notification() -> None:
    rendered = render_digest(
        [EmailNotification(summary="Ann liked your take")], recipient_name="B", platform="Vignette"
    )
    assert rendered.subject == "1 new notification on Vignette"


async def test_starttls_is_used_when_the_settings_ask_for_it(tmp_path: Path) -> None:
    tls = local_tls(tmp_path)
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=tls.server, require_starttls=True
    )
    controller.start()
    try:
        config = SmtpConfig(host="127.0.0.1", port=port, sender=FROM, starttls=True)
        with_tls = EmailSender(config, tls_context=tls.client)
        rendered = render_notification(
            EmailNotification(summary="Ann liked your post"), recipient_name="Bob", platform="V"
        )
        assert (await with_tls.send(TO, rendered)).delivered
        assert inbox.received[0]["tls"] is True

        # Without STARTTLS this server refuses the mail (530): a permanent failure.
        plain = await sender(port).send(TO, rendered)
        assert (plain.outcome, plain.status) == (Outcome.FAILED, 530)
        assert len(inbox.received) == 1
    finally:
        controller.stop()


async def test_smtp_refusals_are_classified(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    rendered = render_notification(
        EmailNotification(summary="Ann liked your post"), recipient_name="Bob", platform="V"
    )
    inbox.data_reply = "451 4.3.0 Try again later"
    busy = await sender(port).send(TO, rendered)
    assert (busy.outcome, busy.status) == (Outcome.RETRY_LATER, 451)

    inbox.data_reply = "250 OK"
    inbox.rcpt_reply = "550 5.1.1 No such user"
    unknown = await sender(port).send(TO, rendered)
    assert (unknown.outcome, unknown.status) == (Outcome.FAILED, 550)
    assert inbox.received == []


async def test_unreachable_server_is_retried_later() -> None:
    rendered = render_notification(
        EmailNotification(summary="Ann liked your post"), recipient_name="Bob", platform="V"
    )
    result = await sender(free_port(), timeout=2.0).send(TO, rendered)
    assert result.outcome is Outcome.RETRY_LATER
