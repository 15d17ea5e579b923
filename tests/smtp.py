"""A real SMTP server on loopback (aiosmtpd) that keeps every message it receives."""

from __future__ import annotations

import email
import email.policy
import json
import threading

from aiosmtpd.controller import Controller

from include.localstack import free_port


class Inbox:
    def __init__(self):
        self.messages: list[dict] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append({"from": envelope.mail_from, "rcpt": sorted(envelope.rcpt_tos), "msg": msg,
                                  "raw": envelope.original_content or envelope.content})
        return "250 OK"

    def clear(self):
        with self._lock:
            self.messages.clear()

    def texts(self) -> list[str]:
        """Every message decoded: headers, each text part's content (base64 and QP undone) and
        each attachment's: an XLSX's every XML part (cell text, sheet names), anything else as bytes."""
        out = []
        for m in self.messages:
            parts = [f"{k}: {v}" for k, v in m["msg"].items()]
            for part in m["msg"].walk():
                if part.get_content_maintype() == "text" and not part.is_attachment():
                    parts.append(part.get_content())
                elif part.is_attachment():
                    parts.append(attachment_text(part.get_content()))
            out.append("\n".join(parts))
        return out


def attachment_text(data: bytes) -> str:
    """All the text inside an attachment: an XLSX (zip) file's parts, else the bytes decoded."""
    import io
    import zipfile

    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return "\n".join(z.read(n).decode("utf-8", errors="replace") for n in z.namelist())
    return data.decode("utf-8", errors="replace")


class SmtpServer:
    """``with SmtpServer() as smtp: ... smtp.inbox.messages``; ``smtp.conn`` is the alerts_smtp connection."""

    def __init__(self, sender: str = "roster-sync@example.org"):
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": self.port,
                     "extra": {"from_email": sender, "disable_ssl": True, "disable_tls": True, "retry_limit": 0}}

    def env(self) -> dict:
        return {"AIRFLOW_CONN_ALERTS_SMTP": json.dumps(self.conn)}

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
