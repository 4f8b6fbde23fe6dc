"""Handing a message to the SMTP server (``MAIL_*`` settings) with the standard library.

``deliver()`` raises ``MailLater`` for what is worth trying again (the server unreachable or
gone, a 4xx reply) and ``MailRefused`` for what is not (a 5xx reply: a bad address, a refused
login). The password is never part of a message.
"""
from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import urlsplit

TIMEOUT = 10.0  # seconds for connecting and for each reply


class MailLater(Exception):
    """Not sent now; worth trying again."""


class MailRefused(Exception):
    """Not sent, and trying again would not help."""


def _code_problem(code: int, message) -> Exception:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    words = f"the mail server answered {code} {' '.join(text.split())}".strip()
    return MailLater(words) if 400 <= code < 500 else MailRefused(words)


def deliver(msg: EmailMessage, config) -> None:
    host, port = config["MAIL_SERVER"], int(config.get("MAIL_PORT") or (465 if config.get("MAIL_USE_SSL") else 25))
    # Our own name for HELO: SITE_URL's host, so smtplib does not look up this machine's name.
    local = urlsplit(config["SITE_URL"]).hostname or "localhost"
    where = f"{host}:{port}"
    try:
        if config.get("MAIL_USE_SSL"):
            smtp = smtplib.SMTP_SSL(host, port, local_hostname=local, timeout=TIMEOUT,
                                    context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, port, local_hostname=local, timeout=TIMEOUT)
        with smtp:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls(context=ssl.create_default_context())
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        code, message = next(iter(exc.recipients.values()))
        problem = _code_problem(code, message)
        raise (MailLater(str(problem)) if all(400 <= c < 500 for c in codes) else MailRefused(str(problem))) from None
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused, login refused...
        if exc.smtp_code < 0:  # (smtplib's own -1: the connection failed)
            raise MailLater(f"the mail server at {where} failed: {exc.smtp_error!r}") from None
        raise _code_problem(exc.smtp_code, exc.smtp_error) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise MailRefused(f"the mail server at {where} does not support it: {exc}") from None
    except smtplib.SMTPServerDisconnected as exc:
        raise MailLater(f"the mail server at {where} closed the connection: {exc}") from None
    except smtplib.SMTPException as exc:  # (an OSError too: before the next clause)
        raise MailRefused(f"the mail server at {where} refused the mail: {exc}") from None
    except OSError as exc:  # refused, unreachable, timed out, TLS failed
        raise MailLater(f"the mail server at {where} is unreachable: {exc or type(exc).__name__}") from None
