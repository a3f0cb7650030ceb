"""A real aiosmtpd SMTP server in the test process that captures what it receives."""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from . import LOOPBACK, client_context, free_port, make_self_signed_cert


@dataclass(frozen=True)
class Captured:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None
    peer: tuple[str, int] | None = None
    tls: bool = False
    mail_options: tuple[str, ...] = ()


class CapturingHandler:
    """aiosmtpd handler: stores each message; can fail the next N with a chosen reply.

    Its EHLO reply offers PIPELINING (RFC 2920) when `pipelining`, as Postfix does: aiosmtpd
    reads commands one line at a time, so a pipelined group is simply answered in order; it
    only does not say so. Without `eight_bit` it withholds 8BITMIME (RFC 6152), as old relays.
    """

    def __init__(self, *, pipelining: bool = False, eight_bit: bool = True) -> None:
        self.pipelining = pipelining
        self.eight_bit = eight_bit
        self._lock = threading.Lock()
        self._messages: list[Captured] = []
        self._arrived = threading.Condition(self._lock)
        self._fail_next = 0
        self._fail_reply = "451 4.3.0 Try again later"
        self._reject_rcpt: dict[str, str] = {}

    @property
    def messages(self) -> list[Captured]:
        with self._lock:
            return list(self._messages)

    def fail_next(self, count: int, reply: str = "451 4.3.0 Try again later") -> None:
        """Answer the next `count` DATA commands with `reply` instead of accepting."""
        with self._lock:
            self._fail_next = count
            self._fail_reply = reply

    def reject_recipient(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        """Refuse RCPT TO for this address."""
        with self._lock:
            self._reject_rcpt[address.lower()] = reply

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Captured]:
        """Block until at least `count` messages arrived (or timeout); return them all."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self._messages) >= count, timeout=timeout)
            return list(self._messages)

    async def handle_EHLO(  # noqa: N802 (aiosmtpd hook name)
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        lines = [r[4:] for r in responses]  # "250-" or "250 " off: the host, then extensions
        if not self.eight_bit:
            lines.remove("8BITMIME")
        if self.pipelining:
            lines.insert(len(lines) - 1, "PIPELINING")  # before HELP, which aiosmtpd puts last
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    async def handle_RCPT(  # noqa: N802 (aiosmtpd hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self._lock:
            reply = self._reject_rcpt.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self._arrived:
            if self._fail_next > 0:
                self._fail_next -= 1
                return self._fail_reply
            auth = session.auth_data
            login = auth.login if isinstance(auth, LoginPassword) else None
            self._messages.append(
                Captured(
                    mail_from=envelope.mail_from,
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content),
                    login=login.decode("utf-8") if isinstance(login, bytes) else login,
                    peer=tuple(session.peer) if session.peer else None,
                    tls=session.ssl is not None
                    or server.transport.get_extra_info("ssl_object") is not None,
                    mail_options=tuple(envelope.mail_options),
                )
            )
            self._arrived.notify_all()
        return "250 2.0.0 Message accepted"


class _Authenticator:
    def __init__(self, users: dict[str, str]) -> None:
        self._users = {u.encode("utf-8"): p.encode("utf-8") for u, p in users.items()}

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            expected = self._users.get(auth_data.login)
            if expected is not None and expected == auth_data.password:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)


@dataclass
class SmtpServer:
    """A running SMTP server; `stop()` ends it."""

    controller: Controller
    handler: CapturingHandler
    port: int
    cafile: Path | None = None
    users: dict[str, str] = field(default_factory=dict)
    implicit_tls: bool = False
    host: str = LOOPBACK

    @property
    def messages(self) -> list[Captured]:
        return self.handler.messages

    def url(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}"

    def client_context(self) -> ssl.SSLContext:
        if self.cafile is None:
            raise RuntimeError("this server was started without TLS")
        return client_context(self.cafile)

    def stop(self) -> None:
        self.controller.stop()


def start_smtpd(
    *,
    starttls: bool = False,
    implicit_tls: bool = False,
    users: dict[str, str] | None = None,
    require_auth: bool = False,
    cert_dir: Path | None = None,
    idle_timeout: float | None = None,
    pipelining: bool = False,
    eight_bit: bool = True,
) -> SmtpServer:
    """Start aiosmtpd on a free loopback port (optionally STARTTLS, smtps, AUTH, PIPELINING;
    without 8BITMIME when `eight_bit` is False)."""
    handler = CapturingHandler(pipelining=pipelining, eight_bit=eight_bit)
    cafile = None
    server_ctx = None
    if starttls or implicit_tls:
        if cert_dir is None:
            raise ValueError("TLS needs cert_dir")
        cert, key = make_self_signed_cert(cert_dir)
        cafile = cert
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(str(cert), str(key))
    kwargs: dict[str, Any] = {}
    if users:
        kwargs["authenticator"] = _Authenticator(users)
        kwargs["auth_required"] = require_auth
        # Plain-text AUTH is allowed without TLS only when the test asks for no TLS at all.
        kwargs["auth_require_tls"] = bool(starttls)
    if starttls:
        kwargs["tls_context"] = server_ctx
    if idle_timeout is not None:
        kwargs["timeout"] = idle_timeout
    port = free_port()
    controller = Controller(
        handler,
        hostname=LOOPBACK,
        port=port,
        ssl_context=server_ctx if implicit_tls else None,
        server_hostname="localhost",
        **kwargs,
    )
    controller.start()
    return SmtpServer(
        controller=controller,
        handler=handler,
        port=port,
        cafile=cafile,
        users=dict(users or {}),
        implicit_tls=implicit_tls,
    )
