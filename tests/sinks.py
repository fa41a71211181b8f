"""Local stand-ins for PagerDuty, Slack, the heartbeat service and an SMTP server: they keep
every notification Alertmanager sends, with the time it arrived."""

from __future__ import annotations

import email
import email.message
import email.policy
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.servers import free_port

# "[FIRING:1] PaymentProviderDown (mtn_money)" / "[RESOLVED] PaymentDatabaseDown"
TITLE = re.compile(r"\[(FIRING|RESOLVED)(?::\d+)?\] (\w+)(?: \((\w+)\))?")


@dataclass(frozen=True)
class Notice:
    """One notification as on-call would get it."""

    at: float  # time.monotonic() on arrival
    receiver: str  # pagerduty, slack, email, heartbeat
    channel: str  # the path prefix or recipient that tells stacks apart
    status: str  # firing or resolved
    alertname: str
    provider: str | None
    text: str  # everything the notification says, for content checks
    body: dict[str, Any]


def _title(text: str) -> tuple[str, str, str | None] | None:
    found = TITLE.search(text)
    if found is None:
        return None
    return found.group(1).lower(), found.group(2), found.group(3)


class HttpSink:
    """POSTs by path: /<channel>/pagerduty, /<channel>/slack, /<channel>/heartbeat."""

    def __init__(self) -> None:
        self.port = free_port()
        self.notices: list[Notice] = []
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def record(self, path: str, body: dict[str, Any]) -> None:
        channel, _, kind = path.strip("/").rpartition("/")
        text = json.dumps(body)
        notices: list[Notice] = []
        if kind == "heartbeat":
            notices = [Notice(time.monotonic(), kind, channel, str(body.get("status")),
                              str(a["labels"].get("alertname")), None, text, body)
                       for a in body.get("alerts", [])]
        else:
            title = (body.get("payload", {}).get("summary", "") if kind == "pagerduty"
                     else (body.get("attachments") or [{}])[0].get("title", ""))
            parsed = _title(str(title))
            if parsed is not None:
                status, alertname, provider = parsed
                if kind == "pagerduty":
                    status = "resolved" if body.get("event_action") == "resolve" else "firing"
                notices = [Notice(time.monotonic(), kind, channel, status, alertname, provider,
                                  text, body)]
        with self._lock:
            self.notices.extend(notices)

    @contextmanager
    def serving(self) -> Iterator[HttpSink]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.record(self.path, json.loads(raw or b"{}"))
                self.send_response(202)
                self.end_headers()
                self.wfile.write(b'{"status": "success"}')

            def log_message(self, *args: object) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


class MailSink:
    """Every message delivered over SMTP; AUTH PLAIN must present `password`."""

    def __init__(self, password: str) -> None:
        self.port = free_port()
        self.password = password
        self.messages: list[tuple[float, email.message.EmailMessage]] = []
        self.notices: list[Notice] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        now = time.monotonic()
        self.messages.append((now, msg))
        subject = str(msg["Subject"])
        parsed = _title(subject)
        if parsed is not None:
            status, alertname, provider = parsed
            self.notices.append(Notice(now, "email", str(msg["To"]), status, alertname,
                                       provider, f"{subject}\n{self.text(msg)}", {}))
        return "250 OK"

    def authenticate(self, server: object, session: object, envelope: object, mechanism: str,
                     auth_data: object) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == self.password.encode()
        if ok and isinstance(auth_data, LoginPassword):
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    @staticmethod
    def text(msg: email.message.EmailMessage) -> str:
        part = msg.get_body(preferencelist=("plain", "html"))
        return str(part.get_content()) if part is not None else ""

    @contextmanager
    def serving(self) -> Iterator[MailSink]:
        # aiosmtpd warns about its own deprecated attribute on every login.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        # PLAIN only: aiosmtpd's LOGIN prompts are not the "Username:" Alertmanager expects.
        controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                authenticator=self.authenticate, auth_require_tls=False,
                                auth_exclude_mechanism=["LOGIN"])
        controller.start()
        try:
            yield self
        finally:
            controller.stop()
