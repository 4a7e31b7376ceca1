"""E-mail pages through an SMTP relay (smtplib)."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from services.notify.config import SmtpConfig
from services.notify.webhook import Outcome


def send_email(smtp: SmtpConfig, *, to: str, subject: str, text: str, message_id: str) -> Outcome:
    """Send one plain-text message; never raises (the outbox retries failures)."""
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    # A stable Message-ID lets mail systems drop the duplicate of a retried delivery.
    message["Message-ID"] = f"<{hashlib.sha256(message_id.encode()).hexdigest()[:32]}@beacon>"
    message.set_content(text)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:1000])
    return Outcome(ok=True)
