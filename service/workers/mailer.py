"""Email over SMTP with the SMTP_* settings (STARTTLS, or implicit TLS on port 465)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from service.settings import Settings

TIMEOUT_SECONDS = 30


def recipients(settings: Settings) -> list[str]:
    return [r.strip() for r in settings.summary_recipients.split(",") if r.strip()]


def skip_reason(settings: Settings) -> str | None:
    """Why the daily summary cannot go out with these settings, or None when it can."""
    if not settings.feature_daily_summary:
        return "FEATURE_DAILY_SUMMARY is false"
    if not settings.smtp_host:
        return "SMTP_HOST is not set"
    if not recipients(settings):
        return "SUMMARY_RECIPIENTS is empty"
    return None


def send(settings: Settings, mail: EmailMessage, to: list[str]) -> None:
    if not settings.smtp_host:
        raise ValueError("SMTP_HOST is not set")
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if settings.smtp_port == 465:
        client = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port,
                                  timeout=TIMEOUT_SECONDS, context=context)
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS)
    with client:
        client.ehlo()
        if settings.smtp_port != 465 and settings.smtp_starttls:
            client.starttls(context=context)
            client.ehlo()
        if settings.smtp_user:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            client.login(settings.smtp_user, password)
        client.send_message(mail, to_addrs=to)
