"""Notification email over SMTP (aiosmtplib): one notification, or a digest.

Each email is multipart/alternative, a text part and an HTML part saying the same.
Everything a user wrote (names, captions, comments) reaches the HTML only through
`html.escape`, and links only when they are http(s), so a display name cannot
inject markup or a javascript: link. No template engine: the two layouts are small
`string.Template`s whose substitutions are escaped before they are filled in.
"""

from __future__ import annotations

import html
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from string import Template

import aiosmtplib

from datasources.notifications.delivery.push import DeliveryResult, Outcome

MAX_SUBJECT = 140


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    sender: str  # the From header: "Entativa <notifications@example.com>"
    port: int = 587
    starttls: bool = True  # required when True; never attempted when False
    username: str = ""
    password: str = ""
    timeout: float = 30.0


@dataclass(frozen=True)
class EmailNotification:
    """One notification as an email shows it. `summary` is plain text as the app
    shows it ("Ann and 2 others liked your post"); `preview` is the user's own
    words it is about (a comment), if any; `url` opens it in the app."""

    summary: str
    url: str = ""
    preview: str = ""
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


_PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>$title</title></head>
<body style="margin:0;padding:24px;font-family:-apple-system,Segoe UI,Roboto,sans-serif;\
color:#1c1e21">
<p>Hi $name,</p>
<p>$intro</p>
<ul style="padding-left:18px">
$items
</ul>
$footer
</body>
</html>
"""
)
_ITEM = Template('<li style="margin-bottom:12px">$summary$preview$when</li>')
_LINK = Template('<a href="$url" style="color:#1b74e4;text-decoration:none">$text</a>')
_PREVIEW = Template('<br><span style="color:#555">&ldquo;$text&rdquo;</span>')
_WHEN = Template('<br><small style="color:#777">$text</small>')
_FOOTER = Template(
    '<p style="color:#777;font-size:12px">'
    "You get this email because of your notification settings on $platform. "
    "$settings</p>"
)


def render_notification(
    item: EmailNotification,
    *,
    recipient_name: str,
    platform: str,
    zone: tzinfo = UTC,
    settings_url: str = "",
) -> RenderedEmail:
    """The email for one notification; its subject is the notification itself."""
    return _render(
        [item],
        subject=item.summary,
        intro=f"You have a new notification on {platform}:",
        recipient_name=recipient_name,
        platform=platform,
        zone=zone,
        settings_url=settings_url,
    )


def render_digest(
    items: Sequence[EmailNotification],
    *,
    recipient_name: str,
    platform: str,
    zone: tzinfo = UTC,
    settings_url: str = "",
) -> RenderedEmail:
    """One email for several (grouped) notifications, in the order given."""
    count = len(items)
    noun = "notification" if count == 1 else "notifications"
    return _render(
        items,
        subject=f"{count} new {noun} on {platform}",
        intro=f"Here is what you missed on {platform}:",
        recipient_name=recipient_name,
        platform=platform,
        zone=zone,
        settings_url=settings_url,
    )


def _render(
    items: Sequence[EmailNotification],
    *,
    subject: str,
    intro: str,
    recipient_name: str,
    platform: str,
    zone: tzinfo,
    settings_url: str,
) -> RenderedEmail:
    subject = _one_line(subject, MAX_SUBJECT)
    esc = html.escape
    text_lines = [f"Hi {recipient_name},", "", intro, ""]
    html_items = []
    for item in items:
        when = _when(item.occurred_at, zone)
        text_lines.append(f"- {item.summary}")
        if item.preview:
            text_lines.append(f'  "{item.preview}"')
        if when:
            text_lines.append(f"  {when}")
        if _safe_url(item.url):
            text_lines.append(f"  {item.url}")
        summary = esc(item.summary)
        if _safe_url(item.url):
            summary = _LINK.substitute(url=esc(item.url), text=summary)
        html_items.append(
            _ITEM.substitute(
                summary=summary,
                preview=_PREVIEW.substitute(text=esc(item.preview)) if item.preview else "",
                when=_WHEN.substitute(text=esc(when)) if when else "",
            )
        )
    footer_text = f"You get this email because of your notification settings on {platform}."
    settings_html = ""
    if _safe_url(settings_url):
        footer_text += f"\nChange them: {settings_url}"
        settings_html = _LINK.substitute(url=esc(settings_url), text="Change them")
    text_lines += ["", "--", footer_text]
    page = _PAGE.substitute(
        title=esc(subject),
        name=esc(recipient_name),
        intro=esc(intro),
        items="\n".join(html_items),
        footer=_FOOTER.substitute(platform=esc(platform), settings=settings_html),
    )
    return RenderedEmail(subject=subject, text="\n".join(text_lines) + "\n", html=page)


def _one_line(text: str, limit: int) -> str:
    """Header-safe: no line breaks (a name with a newline must not add headers)."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _safe_url(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def _when(moment: datetime | None, zone: tzinfo) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return f"{local:%d %b %Y, %H:%M} {local.tzname() or ''}".strip()


class EmailSender:
    """Sends rendered emails through one SMTP server, one connection per email
    (the worker's volume does not warrant a pool; a digest replaces bursts)."""

    def __init__(
        self,
        config: SmtpConfig,
        *,
        tls_context: ssl.SSLContext | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self._tls_context = tls_context
        self._clock = clock

    def compose(self, to: str, email: RenderedEmail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = to
        message["Subject"] = _one_line(email.subject, MAX_SUBJECT)
        message["Date"] = format_datetime(self._clock())
        message["Message-ID"] = make_msgid(domain=_domain(self.config.sender))
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        return message

    async def send(self, to: str, email: RenderedEmail) -> DeliveryResult:
        """Deliver one email. 4xx answers and network failures: RETRY_LATER;
        5xx (a refused address, a rejected message): FAILED."""
        message = self.compose(to, email)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.config.host,
                port=self.config.port,
                start_tls=self.config.starttls,
                username=self.config.username or None,
                password=self.config.password or None,
                tls_context=self._tls_context,
                timeout=self.config.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refused.code for refused in error.recipients]
            return _by_code(min(codes, default=550), str(error))
        except aiosmtplib.SMTPResponseException as error:
            return _by_code(error.code, error.message)
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError) as error:
            return DeliveryResult(Outcome.RETRY_LATER, reason=str(error))
        except aiosmtplib.SMTPServerDisconnected as error:
            return DeliveryResult(Outcome.RETRY_LATER, reason=str(error))
        except aiosmtplib.SMTPException as error:  # e.g. STARTTLS required, not offered
            return DeliveryResult(Outcome.FAILED, reason=str(error))
        except OSError as error:
            return DeliveryResult(Outcome.RETRY_LATER, reason=str(error))
        return DeliveryResult(Outcome.DELIVERED, 250, provider_id=str(message["Message-ID"]))


def _by_code(code: int, reason: str) -> DeliveryResult:
    outcome = Outcome.RETRY_LATER if 400 <= code < 500 else Outcome.FAILED
    return DeliveryResult(outcome, code, reason)


def _domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    try:
        return Address(addr_spec=address).domain or "localhost"
    except (ValueError, IndexError):
        return "localhost"
