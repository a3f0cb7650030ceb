"""A real Dovecot IMAP server for tests: own config in a temp dir, on a loopback port."""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import LOOPBACK, client_context, free_port, make_self_signed_cert, wait_for_port

DOVECOT_BINARY = "dovecot"


class DovecotUnavailable(RuntimeError):
    """Dovecot is not installed or would not start."""


def find_dovecot() -> str | None:
    """Path of the dovecot binary, or None."""
    return shutil.which(DOVECOT_BINARY) or (
        "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None
    )


@dataclass(frozen=True)
class Account:
    """One mailbox on the test server."""

    username: str
    password: str


# Always present: a user whose password needs UTF-8 (Dovecot's default
# auth_username_chars keeps user names ASCII).
UTF8_USER = Account("vu.thi.hoa", "Mật khẩu Đ1 ưởng")
# Users are written before start: Dovecot re-reads a changed passwd-file at most once a
# second, so users added later would sometimes not be there yet.
POOL_SIZE = 300


@dataclass
class DovecotServer:
    """A running Dovecot; `stop()` ends it."""

    root: Path
    port: int
    imaps_port: int | None
    cafile: Path | None
    process: subprocess.Popen[bytes]
    users: dict[str, Account]
    _pool: list[Account]
    _lock: threading.Lock = field(default_factory=threading.Lock)
    host: str = LOOPBACK

    @property
    def tls(self) -> bool:
        return self.cafile is not None

    def url(self, account: Account, folder: str | None = None, scheme: str = "imap") -> str:
        """An imap:// or imaps:// URL for the account (the password is not in it)."""
        from urllib.parse import quote

        port = self.imaps_port if scheme == "imaps" else self.port
        path = "/" + quote(folder, safe="") if folder else ""
        return f"{scheme}://{quote(account.username, safe='')}@{self.host}:{port}{path}"

    def add_user(self) -> Account:
        """A user not handed out before, so a fresh, empty mailbox."""
        with self._lock:
            if not self._pool:
                raise RuntimeError("all pre-made test users are used; raise POOL_SIZE")
            return self._pool.pop(0)

    def connect(self, account: Account, folder: str | None = "INBOX") -> imaplib.IMAP4:
        """A logged-in imaplib connection (plain IMAP, no TLS), for arranging tests."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            payload = b"\0" + account.username.encode() + b"\0" + account.password.encode()
            client.authenticate("PLAIN", lambda _challenge: payload)
            if folder:
                client.select(_quote_folder(folder))
        except BaseException:
            client.shutdown()
            raise
        return client

    def append(
        self,
        account: Account,
        raw: bytes,
        folder: str = "INBOX",
        flags: Iterable[str] = (),
        create: bool = True,
        when: dt.datetime | None = None,
    ) -> int:
        """APPEND one message (INTERNALDATE `when`, default now); returns its UID."""
        client = self.connect(account, folder=None)
        try:
            if create:
                client.create(_quote_folder(folder))  # fails harmlessly when it exists
            flag_text = "(" + " ".join(flags) + ")" if flags else None
            when = when or dt.datetime.now(dt.UTC)
            typ, data = client.append(_quote_folder(folder), flag_text, when, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            if not match:
                raise RuntimeError(f"no APPENDUID in {data!r}")
            return int(match.group(1))
        finally:
            client.logout()

    def uids(self, account: Account, folder: str = "INBOX") -> list[int]:
        """UIDs in a folder (read-only look)."""
        client = self.connect(account, folder=None)
        try:
            typ, _ = client.select(_quote_folder(folder), readonly=True)
            if typ != "OK":
                return []
            typ, data = client.uid("SEARCH", "ALL")
            return [int(x) for x in (data[0] or b"").split()]
        finally:
            client.logout()

    def flags(self, account: Account, uid: int, folder: str = "INBOX") -> set[str]:
        """The flags of one message."""
        client = self.connect(account, folder=None)
        try:
            client.select(_quote_folder(folder), readonly=True)
            typ, data = client.uid("FETCH", str(uid), "(FLAGS)")
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode()
            match = re.search(r"FLAGS \(([^)]*)\)", text)
            return set(match.group(1).split()) if match else set()
        finally:
            client.logout()

    def kick(self, account: Account) -> None:
        """Drop every connection of the account (as an admin or a server restart would)."""
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        subprocess.run(
            [doveadm, "-c", str(self.root / "dovecot.conf"), "kick", account.username],
            check=True,
            capture_output=True,
            timeout=10,
        )

    def log(self) -> str:
        """The server log so far (for assertion messages)."""
        try:
            return (self.root / "dovecot.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def client_context(self):  # type: ignore[no-untyped-def]
        """A TLS client context that trusts this server's self-signed certificate."""
        if self.cafile is None:
            raise RuntimeError("this server was started without TLS")
        return client_context(self.cafile)

    def stop(self) -> None:
        """Stop Dovecot and remove its directory."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _quote_folder(name: str) -> str:
    from imap_tools.imap_utf7 import utf7_encode

    encoded = utf7_encode(name).decode("ascii")
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def start_dovecot(
    *, tls: bool = False, extra_conf: str = "", users: Iterable[Account] = (UTF8_USER,)
) -> DovecotServer:
    """Start Dovecot in the foreground on a free loopback port; raise DovecotUnavailable.

    `users` are fixed accounts; `add_user()` hands out fresh pre-made ones.
    """
    binary = find_dovecot()
    if binary is None:
        raise DovecotUnavailable("the dovecot binary is not installed (apt install dovecot-imapd)")

    # Under root the mail processes must drop to an unprivileged uid (Dovecot refuses uid 0),
    # so the tree lives in a world-traversable temp dir rather than pytest's 0700 tmp_path.
    root = Path(tempfile.mkdtemp(prefix="mailbot-dovecot-"))
    root.chmod(0o755)
    is_root = os.geteuid() == 0
    if is_root:
        mail_user = _unprivileged_user()
        internal_user = "root"
        login_user = _login_user()
    else:
        me = pwd.getpwuid(os.geteuid())
        mail_user = me
        internal_user = login_user = me.pw_name

    (root / "run").mkdir()
    (root / "state").mkdir()
    mail_dir = root / "mail"
    mail_dir.mkdir()
    if is_root:
        os.chown(mail_dir, mail_user.pw_uid, mail_user.pw_gid)
    accounts = {a.username: a for a in users}
    pool = [Account(f"u{n:03d}x{uuid.uuid4().hex[:6]}", uuid.uuid4().hex) for n in range(POOL_SIZE)]
    for a in [*accounts.values(), *pool]:
        if ":" in a.username + a.password or "\n" in a.password:
            raise ValueError("':' and newlines cannot go into a passwd-file")
    passwd = root / "passwd"
    passwd.write_text(
        "".join(f"{a.username}:{{PLAIN}}{a.password}::::::\n" for a in [*accounts.values(), *pool]),
        encoding="utf-8",
    )

    port = free_port()
    imaps_port = free_port() if tls else None
    cafile = None
    ssl_conf = "ssl = no"
    if tls:
        cert, key = make_self_signed_cert(root / "tls")
        cafile = cert
        ssl_conf = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\nssl_min_protocol = TLSv1.2"
    chroot = "" if is_root else "  chroot =\n"
    conf = f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {LOOPBACK}
{ssl_conf}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {_group_name(mail_user.pw_gid) if not is_root else "root"}
default_login_user = {login_user}
first_valid_uid = 1
first_valid_gid = 0
mail_location = maildir:{mail_dir}/%u
mailbox_idle_check_interval = 1 secs
auth_failure_delay = 0 secs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={mail_dir}/%u
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = {LOOPBACK}
    port = {port}
  }}
  inet_listener imaps {{
    address = {LOOPBACK}
    port = {imaps_port or 0}
  }}
}}
{extra_conf}
"""
    conf_path = root / "dovecot.conf"
    conf_path.write_text(conf, encoding="utf-8")
    stderr = (root / "stderr.log").open("wb")
    try:
        process = subprocess.Popen(
            [binary, "-F", "-c", str(conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
    finally:
        stderr.close()
    server = DovecotServer(
        root=root,
        port=port,
        imaps_port=imaps_port,
        cafile=cafile,
        process=process,
        users=accounts,
        _pool=pool,
    )
    ports = [port] + ([imaps_port] if imaps_port else [])
    if not all(wait_for_port(p, timeout=15) for p in ports) or process.poll() is not None:
        detail = server.log() + (root / "stderr.log").read_text(errors="replace")
        server.stop()
        raise DovecotUnavailable(f"dovecot did not start:\n{detail}")
    return server


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("nobody", "dovenull", "mail"):
        with contextlib.suppress(KeyError):
            user = pwd.getpwnam(name)
            if user.pw_uid != 0:
                return user
    raise DovecotUnavailable("no unprivileged system user (nobody) to own the test mail")


def _login_user() -> str:
    for name in ("dovenull", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise DovecotUnavailable("no unprivileged user for imap-login (dovenull or nobody)")


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
