"""Where mail goes: the ``alerts_smtp`` connection through the SMTP provider, or files.

OUTPUTS.md makes ``alerts_smtp`` optional: without it digests are written as ``.eml``
files (RFC 5322, openable in any mail client) under ``<data root>/outbox/`` and not
mailed. With it, mail goes through :class:`airflow.providers.smtp.hooks.smtp.SmtpHook`,
which reads host, port, login, password and ``extra`` (``from_email``, ``disable_ssl``,
``disable_tls``, ``timeout``) the provider's way.

Every message is built here with a plain-text and an HTML part and a Message-ID that
is a function of its content's identity, so a message sent twice by a retry carries the
same Message-ID and mail systems show it once.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from include.identifiers import redact

log = logging.getLogger("roster_sync.alerts")
MAIL_DOMAIN = "roster-sync.invalid"


XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def build(subject: str, text: str, html: str, to, cc=(), message_id: str | None = None,
          sender: str | None = None, headers: dict | None = None, attachments=()) -> EmailMessage:
    """A multipart/alternative message, with ``attachments`` (``(file name, bytes)``, XLSX)
    after it. Subject and both bodies pass through :func:`redact` on the way in: a full ID
    number cannot leave in a mail even if a caller forgot to mask. An attachment is built
    masked by its maker (:mod:`include.alerts.evidence`)."""
    msg = EmailMessage()
    msg["Subject"] = redact(subject)
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if sender:
        msg["From"] = sender
    msg["Date"] = formatdate(localtime=True)
    if message_id:
        msg["Message-ID"] = f"<{message_id}@{MAIL_DOMAIN}>"
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(redact(text))
    msg.add_alternative(redact(html), subtype="html")
    for name, data in attachments:
        msg.add_attachment(data, maintype=XLSX[0], subtype=XLSX[1], filename=name)
    return msg


class FileOutbox:
    """Writes each message to ``<dir>/<name>.eml``; used when ``alerts_smtp`` is not configured."""

    channel = "file"

    def __init__(self, directory: str | Path, sender: str = "roster-sync@localhost"):
        self.directory = Path(directory)
        self.sender = sender

    def send(self, msg: EmailMessage, name: str) -> str:
        if "From" not in msg:
            msg["From"] = self.sender
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.eml"
        tmp = path.with_suffix(".eml.part")
        tmp.write_bytes(bytes(msg))
        tmp.replace(path)
        return str(path)

    def close(self) -> None:
        pass


class SmtpOutbox:
    """Sends through the SMTP provider's hook on connection ``conn_id``; one SMTP session for all."""

    channel = "smtp"

    def __init__(self, conn_id: str = "alerts_smtp"):
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        self.conn_id = conn_id
        self._hook = SmtpHook(smtp_conn_id=conn_id)
        self._open = False

    def send(self, msg: EmailMessage, name: str) -> str:
        if not self._open:
            self._hook.get_conn()
            self._open = True
        if "From" not in msg:
            sender = self._hook.from_email
            if not sender:
                raise ValueError(f"connection {self.conn_id!r}: set extra.from_email (the sender of alert mail)")
            msg["From"] = sender
        # The hook's send_email_smtp builds an HTML-only message; ours carries a text part
        # too, so send it on the session the hook opened and authenticated.
        self._hook._smtp_client.send_message(msg)
        return f"smtp:{self.conn_id}"

    def close(self) -> None:
        if self._open:
            self._hook.__exit__(None, None, None)
            self._open = False


def open_outbox(spool_dir: str | Path, conn_id: str = "alerts_smtp"):
    """:class:`SmtpOutbox` when ``conn_id`` is configured, else a :class:`FileOutbox` on ``spool_dir``."""
    if connection_exists(conn_id):
        return SmtpOutbox(conn_id)
    log.info("connection %s is not configured: mail is written to %s instead of being sent", conn_id, spool_dir)
    return FileOutbox(spool_dir)


def connection_exists(conn_id: str) -> bool:
    try:
        from airflow.sdk import BaseHook

        BaseHook.get_connection(conn_id)
        return True
    except Exception:   # AirflowNotFoundException, or no secrets backend reachable at all
        return False
