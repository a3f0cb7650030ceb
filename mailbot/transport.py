"""Where mail goes: an SMTP server (smtp:// + STARTTLS, smtps://) or a directory of .eml files."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.parser
import email.policy
import logging
import os
import re
import smtplib
import ssl
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from mailbot.config import ConfigError, OutgoingConfig
from mailbot.fsutil import fsync_dir

log = logging.getLogger(__name__)

# Any line end: CRLF, a bare LF or a bare CR (the ends smtplib's own _fix_eols matches).
_LINE_END = re.compile(rb"\r\n|\n|\r(?!\n)")


def smtp_payload(raw: bytes) -> bytes:
    """`raw` as it goes after DATA: CRLF line ends, dot-stuffed, ending in CRLF (RFC 5321
    2.3.8, 4.5.2); the end-of-data mark is not included.

    The usual mail is CRLF already and needs no regex pass: counting line ends and one
    replace are done in C at memory speed.
    """
    crlf = raw.count(b"\r\n")
    if raw.count(b"\n") != crlf or raw.count(b"\r") != crlf:
        raw = _LINE_END.sub(b"\r\n", raw)
    stuffed = raw.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed if stuffed.endswith(b"\r\n") else stuffed + b"\r\n"


def seven_bit(raw: bytes) -> bytes:
    """`raw` with its 8bit text parts in quoted-printable, for a server without 8BITMIME
    (RFC 6152: 8bit data only to a server that offers it). Other parts and every header
    stay as they are; the text each part decodes to is the same."""
    import email.generator
    import io
    import quopri

    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
    for part in msg.walk():
        if part.is_multipart() or part.get("Content-Transfer-Encoding", "").lower() != "8bit":
            continue
        body = part.get_payload(decode=True)
        assert isinstance(body, bytes)
        lines = body.replace(b"\r\n", b"\n")
        part.replace_header("Content-Transfer-Encoding", "quoted-printable")
        part.set_payload(quopri.encodestring(lines).decode("ascii"))
    out = io.BytesIO()
    gen = email.generator.BytesGenerator(out, mangle_from_=False, maxheaderlen=0)
    gen.flatten(msg, linesep="\r\n")
    return out.getvalue()


# A bare address of dot-separated atoms, which smtplib.quoteaddr would return unchanged in
# <>: the usual case, without its parser (a tenth of a millisecond per address).
_PLAIN_ADDRESS = re.compile(
    r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*@[\w-]+(?:\.[\w-]+)*"
)


def _command(verb: str, address: str, options: list[str]) -> str:
    """One MAIL or RCPT command line, as smtplib writes it."""
    path = f"<{address}>" if _PLAIN_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)
    line = f"{verb}:{path}{''.join(' ' + o for o in options)}"
    if "\r" in line or "\n" in line:
        raise ValueError(f"an SMTP command may not contain a line break: {line!r}")
    return line + "\r\n"


class DeliveryError(Exception):
    """Sending failed; `code` is the SMTP reply code when there was one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporaryFailure(DeliveryError):
    """Try again later: a 4xx reply, a refused or dropped connection, a timeout."""


class AuthenticationFailure(TemporaryFailure):
    """The server refused our credentials: a configuration fault, not the mail's; retry later."""


class PermanentFailure(DeliveryError):
    """The server refused this mail for good (5xx); retrying the same mail will not help."""


Refused = dict[str, tuple[int, str]]


@runtime_checkable
class Sender(Protocol):
    """Something that delivers raw mails."""

    def send(self, raw: bytes, from_addr: str, to_addrs: list[str]) -> Refused: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- SMTP


def _classify(code: int, text: str) -> DeliveryError:
    if 400 <= code < 500:
        return TemporaryFailure(f"{code} {text}", code)
    if 500 <= code < 600:
        return PermanentFailure(f"{code} {text}", code)
    return TemporaryFailure(f"unexpected reply {code} {text}", code)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _text(resp: bytes | str) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)


def _end_empty_data(smtp: smtplib.SMTP, data_code: int) -> None:
    """A pipelined DATA that a lax server accepted (354) though the transaction failed
    before it is ended with an empty mail (RFC 2920 3.1), never this mail."""
    if data_code == 354:
        smtp.send(b".\r\n")
        smtp.getreply()


class SmtpSender:
    """Delivers through one SMTP connection, kept open for a batch and renewed when dropped."""

    def __init__(
        self,
        config: OutgoingConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        password: str | None = None,
        local_hostname: str | None = None,
    ) -> None:
        parts = urlsplit(config.url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps"):
            raise ConfigError(f"outgoing url {config.url!r}: expected smtp:// or smtps://")
        if not parts.hostname:
            raise ConfigError(f"outgoing url {config.url!r}: no host")
        if parts.password:
            raise ConfigError("outgoing url: put the password in password_env or password_file")
        try:
            self.port = parts.port or (465 if scheme == "smtps" else 25)
        except ValueError as exc:
            raise ConfigError(f"outgoing url {config.url!r}: bad port") from exc
        self.config = config
        self.implicit_tls = scheme == "smtps"
        self.host = parts.hostname
        self.username = unquote(parts.username) if parts.username else config.username
        self._password = password
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _open(self) -> smtplib.SMTP:
        timeout = float(self.config.timeout_seconds)
        smtp: smtplib.SMTP
        if self.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self._local_hostname,
                timeout=timeout,
                context=self._context(),
            )
        else:
            smtp = smtplib.SMTP(
                self.host, self.port, local_hostname=self._local_hostname, timeout=timeout
            )
        try:
            smtp.ehlo()
            if not self.implicit_tls and smtp.has_extn("starttls"):
                code, resp = smtp.starttls(context=self._context())
                if code != 220:
                    raise _classify(code, _text(resp))
                smtp.ehlo()
            if self.username:
                self._login(smtp)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        password = self._password if self._password is not None else self.config.password.resolve()
        if password is None:
            raise ConfigError("outgoing: a username is set but no password_env/password_file")
        user = self.username or ""
        if not smtp.has_extn("auth"):
            raise AuthenticationFailure(
                f"{self.host} offers no AUTH (STARTTLS missing or not allowed?)"
            )
        if (user + password).isascii():
            try:
                smtp.login(user, password)
            except smtplib.SMTPAuthenticationError as exc:
                raise AuthenticationFailure(
                    f"login as {user} refused: {exc.smtp_code} {_text(exc.smtp_error)}",
                    exc.smtp_code,
                ) from None
            return
        # smtplib encodes SASL responses as ASCII; non-ASCII passwords need UTF-8 by hand.
        methods = smtp.esmtp_features.get("auth", "").upper().split()
        if "PLAIN" in methods:
            code, resp = smtp.docmd("AUTH", "PLAIN " + _b64(f"\0{user}\0{password}"))
        elif "LOGIN" in methods:
            code, resp = smtp.docmd("AUTH", "LOGIN " + _b64(user))
            if code == 334:
                code, resp = smtp.docmd(_b64(password))
        else:
            raise AuthenticationFailure(f"{self.host} offers no PLAIN or LOGIN for a UTF-8 login")
        if code != 235:
            raise AuthenticationFailure(f"login as {user} refused: {code} {_text(resp)}", code)

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            try:
                self._smtp = self._open()
            except smtplib.SMTPResponseException as exc:
                # A refusing greeting or EHLO is about the server, not this mail.
                raise TemporaryFailure(
                    f"{self.host}:{self.port} refused the session: {exc.smtp_code} "
                    f"{_text(exc.smtp_error)}",
                    exc.smtp_code,
                ) from None
        return self._smtp

    def probe(self) -> None:
        """Is the server usable? A live session (NOOP) or a new one (EHLO, TLS, AUTH).

        Raises TemporaryFailure (or AuthenticationFailure) when it is not; sends no mail.
        """
        try:
            if self._smtp is not None:
                try:
                    code, _resp = self._smtp.noop()
                    if code == 250:
                        return
                except (smtplib.SMTPException, OSError):
                    pass
                self._discard()
            self._connection()
        except DeliveryError:
            self._discard()
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self._discard()
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from None

    def _discard(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def send(self, raw: bytes, from_addr: str, to_addrs: list[str]) -> Refused:
        """Deliver; returns recipients refused while others were accepted (else raises)."""
        if not to_addrs:
            raise PermanentFailure("no recipients")
        options: list[str] = []
        if not (from_addr.isascii() and all(a.isascii() for a in to_addrs)):
            options.append("SMTPUTF8")
        try:
            return self._transaction(raw, from_addr, to_addrs, options)
        except DeliveryError:
            raise
        except smtplib.SMTPResponseException as exc:
            if self._smtp is not None:
                self._rset(self._smtp)
            raise _classify(exc.smtp_code, _text(exc.smtp_error)) from None
        except (smtplib.SMTPException, OSError) as exc:
            # Refused, dropped or timed-out connections, TLS failures: all worth a retry.
            self._discard()
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from None

    def _transaction(
        self, raw: bytes, from_addr: str, to_addrs: list[str], options: list[str]
    ) -> Refused:
        """MAIL, RCPT, DATA and the payload. A server offering PIPELINING (RFC 2920) gets
        the envelope and DATA in one write, so a mail costs two round trips, not 3 + RCPTs.
        An 8bit body goes as it is, with BODY=8BITMIME, to a server offering 8BITMIME, and
        in quoted-printable to any other (RFC 6152)."""
        eight_bit = not raw.isascii()
        for attempt in (1, 2):
            smtp = self._connection()
            if "SMTPUTF8" in options and not smtp.has_extn("smtputf8"):
                raise PermanentFailure(f"{self.host} cannot take non-ASCII addresses (SMTPUTF8)")
            mail_options = options
            if eight_bit and smtp.has_extn("8bitmime"):
                mail_options = [*options, "BODY=8BITMIME"]
                payload = smtp_payload(raw)
            else:
                payload = smtp_payload(seven_bit(raw) if eight_bit else raw)
            pipelined = smtp.has_extn("pipelining")
            lines = [_command("MAIL FROM", from_addr, mail_options)]
            if pipelined:
                lines += [_command("RCPT TO", a, []) for a in to_addrs]
                lines.append("DATA\r\n")
            if "SMTPUTF8" in options:
                smtp.command_encoding = "utf-8"  # as smtplib's mail() does
            try:
                smtp.send("".join(lines))
                code, resp = smtp.getreply()
            except (smtplib.SMTPServerDisconnected, OSError):
                # A kept-open connection the server closed meanwhile. Nothing of the mail
                # was sent yet (the payload waits for 354), so one retry on a fresh
                # connection cannot duplicate it.
                self._discard()
                if attempt == 2:
                    raise
                continue
            if code != 421:
                break
            # The server is closing this session (Postfix says 421 when an idle session
            # times out): no other reply follows; a fresh session, as above.
            self._discard()
            if attempt == 2:
                raise _classify(code, _text(resp))
        replies = [smtp.getreply() for _ in range(len(to_addrs) + 1)] if pipelined else []
        if code != 250:
            if pipelined:
                _end_empty_data(smtp, replies[-1][0])
            self._rset(smtp)
            raise _classify(code, _text(resp))
        if not pipelined:
            for addr in to_addrs:
                smtp.send(_command("RCPT TO", addr, []))
                replies.append(smtp.getreply())
        refused: Refused = {
            addr: (c, _text(r))
            for addr, (c, r) in zip(to_addrs, replies, strict=False)
            if c not in (250, 251)
        }
        if len(refused) == len(to_addrs):
            if pipelined:
                _end_empty_data(smtp, replies[-1][0])
            self._rset(smtp)
            details = "; ".join(f"{a}: {c} {m}" for a, (c, m) in refused.items())
            codes = [c for c, _ in refused.values()]
            cls = PermanentFailure if all(500 <= c < 600 for c in codes) else TemporaryFailure
            raise cls(f"all recipients refused: {details}", codes[0])
        if pipelined:
            code, resp = replies[-1]
        else:
            smtp.send("DATA\r\n")
            code, resp = smtp.getreply()
        if code != 354:
            self._rset(smtp)
            raise _classify(code, _text(resp))
        smtp.send(payload + b".\r\n")
        code, resp = smtp.getreply()
        if code != 250:
            self._rset(smtp)
            raise _classify(code, _text(resp))
        return refused

    def _rset(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._discard()

    def close(self) -> None:
        """QUIT (best effort) and close the connection."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- directory


_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def _safe_message_id(raw: bytes) -> str:
    """A file-name-safe form of the mail's Message-ID, or 'no-message-id'."""
    end = raw.find(b"\r\n\r\n")
    end = end if end >= 0 else raw.find(b"\n\n")
    head = raw if end < 0 else raw[:end]
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    mid = str(msg.get("Message-ID") or "").strip().strip("<>")
    safe = _UNSAFE.sub("_", mid).strip("._")[:120]
    return safe or "no-message-id"


class DirSender:
    """Writes each mail atomically as `<UTC time>-<Message-ID>.eml` in one directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def send(self, raw: bytes, from_addr: str, to_addrs: list[str]) -> Refused:
        """Write the mail; the envelope is not kept (the headers carry the addresses)."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        stem = f"{stamp}-{_safe_message_id(raw)}"
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".eml", dir=self.path)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(raw)
                    fh.flush()
                    os.fsync(fh.fileno())
                for n in range(1000):
                    target = self.path / (f"{stem}.eml" if n == 0 else f"{stem}-{n}.eml")
                    try:
                        # link() refuses to overwrite, unlike rename()
                        os.link(tmp, target)
                        break
                    except FileExistsError:
                        continue
                else:
                    raise TemporaryFailure(f"no free file name for {stem} in {self.path}")
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            with contextlib.suppress(OSError):
                fsync_dir(self.path)
        except OSError as exc:
            raise TemporaryFailure(f"cannot write to {self.path}: {exc}") from exc
        return {}

    def close(self) -> None:
        """Nothing to release."""


# --------------------------------------------------------------------------- factory


def open_sender(
    config: OutgoingConfig,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Sender:
    """The sender the outgoing URL names: smtp://, smtps://, dir:PATH, file:PATH or a path."""
    url = config.url
    low = url.lower()
    if low.startswith(("smtp://", "smtps://")):
        return SmtpSender(config, ssl_context=ssl_context)
    if low.startswith("file:"):
        raw_path = unquote(urlsplit(url).path)
    elif low.startswith("dir:"):
        raw_path = url.split(":", 1)[1]
        if raw_path.startswith("//"):
            raw_path = unquote(urlsplit(url).path)
    elif "://" not in url and url.strip():
        raw_path = url
    else:
        raise ConfigError(f"outgoing url {url!r}: expected smtp://, smtps://, dir:PATH or a path")
    path = Path(raw_path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return DirSender(path)


__all__ = [
    "AuthenticationFailure",
    "DeliveryError",
    "DirSender",
    "PermanentFailure",
    "Refused",
    "Sender",
    "SmtpSender",
    "TemporaryFailure",
    "open_sender",
    "seven_bit",
]
