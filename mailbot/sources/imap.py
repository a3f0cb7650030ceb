"""An IMAP folder as a mail source: UID catch-up within UIDVALIDITY, IDLE as a wake-up hint."""

from __future__ import annotations

import contextlib
import imaplib
import io
import logging
import select
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from imap_tools import MailBox as ImapTlsMailBox
from imap_tools import MailBoxUnencrypted
from imap_tools.mailbox import BaseMailBox

from mailbot.backoff import Backoff
from mailbot.config import ConfigError, InboxConfig
from mailbot.sources import imap_wire as wire
from mailbot.sources.base import (
    HEADER_PEEK_BYTES,
    Baseline,
    DoneRef,
    IncomingRef,
    KnownFn,
    SourceError,
    StaleUidValidity,
    sleep_until,
)
from mailbot.sources.headers import parse_headers

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Download at most this much per FETCH (or one mail, when it alone is larger).
_BATCH_BYTES = 32 * 1024 * 1024
# A connection is re-checked with NOOP after being unused this long.
_STALE_AFTER_SECONDS = 60.0
# Reconnect waits after failed connections: 2 s, 4 s, 8 s... at most 5 minutes.
_RECONNECT_BASE_SECONDS = 2.0
_MAX_BACKOFF_SECONDS = 300.0
# RFC 2177: IDLE must be re-issued before 29 minutes.
_IDLE_MAX_SECONDS = 28 * 60
# Keyword left on a mail copied to the processed folder by a server without UIDPLUS,
# where removing only that one UID from the inbox is impossible.
FALLBACK_KEYWORD = "$MailbotProcessed"
_CHANGES = ("EXISTS", "RECENT", "EXPUNGE", "FETCH")


@dataclass(frozen=True)
class ImapTarget:
    """Where an imap:// or imaps:// URL points."""

    scheme: str
    host: str
    port: int
    username: str | None
    folder: str | None


def parse_imap_url(url: str) -> ImapTarget:
    """Split `imap[s]://[user@]host[:port][/Folder]`; the folder is percent-decoded."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("imap", "imaps"):
        raise ConfigError(f"inbox url {url!r}: expected imap:// or imaps://")
    if not parts.hostname:
        raise ConfigError(f"inbox url {url!r}: no host")
    if parts.password:
        raise ConfigError("inbox url: put the password in password_env or password_file")
    try:
        port = parts.port or (993 if scheme == "imaps" else 143)
    except ValueError as exc:
        raise ConfigError(f"inbox url {url!r}: bad port") from exc
    folder = unquote(parts.path.lstrip("/")) or None
    user = unquote(parts.username) if parts.username else None
    return ImapTarget(scheme, parts.hostname, port, user, folder)


@dataclass
class _Conn:
    box: BaseMailBox
    capabilities: frozenset[str]
    uidvalidity: int | None
    uidnext: int | None = None
    last_used: float = field(default_factory=time.monotonic)

    @property
    def client(self) -> imaplib.IMAP4:
        return self.box.client


class ImapSource:
    """One IMAP folder over one connection, reconnecting with back-off."""

    def __init__(
        self,
        config: InboxConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        password: str | None = None,
    ) -> None:
        self.config = config
        self.target = parse_imap_url(config.url)
        self.username = self.target.username or config.username
        if not self.username:
            raise ConfigError("inbox: no user name (put it in the URL or in `username`)")
        self.folder = self.target.folder or config.folder
        self._password = password
        self._ssl_context = ssl_context
        self._conn: _Conn | None = None
        self._backoff = Backoff(base=_RECONNECT_BASE_SECONDS, cap=_MAX_BACKOFF_SECONDS)
        self._known_uidvalidity: int | None = None
        self._processed_ready = False
        self.source_key = (
            f"imap:{self.username}@{self.target.host}:{self.target.port}/{self.folder}"
        )

    # -- connection -----------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _resolve_password(self) -> str:
        password = self._password if self._password is not None else self.config.password.resolve()
        if password is None:
            raise ConfigError("inbox: no password (set password_env or password_file)")
        return password

    def _connect(self) -> _Conn:
        timeout = float(self.config.timeout_seconds)
        host, port = self.target.host, self.target.port
        box: BaseMailBox
        if self.target.scheme == "imaps":
            box = ImapTlsMailBox(host, port, timeout=timeout, ssl_context=self._context())
        else:
            box = MailBoxUnencrypted(host, port, timeout=timeout)
            try:
                if "STARTTLS" in box.client.capabilities:
                    wire.ok(box.client.starttls(self._context()), "STARTTLS")
                elif host not in ("127.0.0.1", "::1", "localhost"):
                    log.warning("%s offers no STARTTLS: the password goes unencrypted", host)
            except BaseException:
                box.client.shutdown()
                raise
        try:
            self._login(box)
            capabilities = self._capabilities(box.client)
            wire.ok(box.client.select(wire.mailbox_name(self.folder)), f"SELECT {self.folder!r}")
            uidvalidity = wire.untagged_int(box.client, "UIDVALIDITY")
            uidnext = wire.untagged_int(box.client, "UIDNEXT")
        except BaseException:
            box.client.shutdown()
            raise
        box.folder._current_folder = self.folder  # type: ignore[assignment]  # imap-tools' view
        if self._known_uidvalidity is not None and uidvalidity != self._known_uidvalidity:
            log.warning(
                "UIDVALIDITY of %s changed from %s to %s",
                self.source_key,
                self._known_uidvalidity,
                uidvalidity,
            )
        self._known_uidvalidity = uidvalidity
        return _Conn(box=box, capabilities=capabilities, uidvalidity=uidvalidity, uidnext=uidnext)

    def _login(self, box: BaseMailBox) -> None:
        client = box.client
        username = self.username or ""
        password = self._resolve_password()
        caps = client.capabilities
        try:
            if "AUTH=PLAIN" in caps:
                # SASL PLAIN carries UTF-8; imaplib's LOGIN only takes ASCII.
                payload = b"\0" + username.encode("utf-8") + b"\0" + password.encode("utf-8")
                client.authenticate("PLAIN", lambda _challenge: payload)
            elif (username + password).isascii() and "LOGINDISABLED" not in caps:
                client.login(username, password)
            else:
                raise SourceError(
                    "the IMAP server offers neither AUTH=PLAIN nor a LOGIN that can carry "
                    "this user name and password"
                )
        except imaplib.IMAP4.error as exc:
            if isinstance(exc, imaplib.IMAP4.abort):
                raise
            raise SourceError(f"IMAP login failed for {username}: {exc}") from None

    @staticmethod
    def _capabilities(client: imaplib.IMAP4) -> frozenset[str]:
        # imaplib only knows the pre-login list; servers (Dovecot) add MOVE, UIDPLUS after it.
        typ, data = client.capability()
        if typ == "OK" and data and data[-1]:
            caps = frozenset(data[-1].decode("ascii", "replace").upper().split())
            client.capabilities = tuple(caps)
            return caps
        return frozenset(client.capabilities)

    def _ensure(self) -> _Conn:
        conn = self._conn
        if conn is not None and time.monotonic() - conn.last_used > _STALE_AFTER_SECONDS:
            try:
                conn.client.noop()
            except (imaplib.IMAP4.error, OSError):
                self._drop()
                conn = None
        if conn is None:
            try:
                conn = self._connect()
            except SourceError:
                self._backoff.failed()
                raise
            except (imaplib.IMAP4.error, OSError) as exc:
                self._backoff.failed()
                raise SourceError(f"cannot connect to {self.source_key}: {exc}") from exc
            self._conn = conn
            self._backoff.reset()
        conn.last_used = time.monotonic()
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.client.shutdown()

    def _command(self, fn: Callable[[_Conn], _T]) -> _T:
        """Run fn on a live connection; on a dropped connection reconnect once and retry."""
        for attempt in (1, 2):
            conn = self._ensure()
            try:
                result = fn(conn)
                conn.last_used = time.monotonic()
                return result
            except (imaplib.IMAP4.abort, OSError) as exc:
                self._drop()
                if attempt == 2:
                    self._backoff.failed()
                    raise SourceError(f"connection to {self.source_key} lost: {exc}") from exc
                log.info("IMAP connection lost (%s); reconnecting", exc)
            except imaplib.IMAP4.error as exc:
                raise SourceError(f"IMAP command failed on {self.source_key}: {exc}") from exc
        raise AssertionError("unreachable")

    # -- Source API -------------------------------------------------------------

    def uidvalidity(self) -> int | None:
        """The folder's UIDVALIDITY as of the current connection."""
        return self._ensure().uidvalidity

    def new_messages(
        self, last_uid: int | None = None, known: KnownFn | None = None
    ) -> Iterator[IncomingRef]:
        """Mails with UID > last_uid in UID order, with size and a few headers; no download."""
        uids = self._command(lambda c: self._search_after(c, last_uid))
        batch = max(1, int(self.config.batch_size))
        for start in range(0, len(uids), batch):
            chunk = uids[start : start + batch]
            refs = self._command(partial(self._describe, uids=chunk))
            for ref in refs:
                if known is not None and known(ref):
                    continue
                yield ref

    def _search_after(self, conn: _Conn, last_uid: int | None) -> list[int]:
        # Servers announce mail delivered by other sessions only at a sync point; without
        # this NOOP, Dovecot's SEARCH does not see it yet.
        wire.ok(conn.client.noop(), "NOOP")
        criteria = f"UID {last_uid + 1}:*" if last_uid is not None else "ALL"
        if self.config.processed_keyword and not self.config.processed_folder:
            criteria += f" UNKEYWORD {self.config.processed_keyword}"
        data = wire.ok(conn.client.uid("SEARCH", criteria), "UID SEARCH")
        found = sorted({int(x) for x in b" ".join(d for d in data if d).split()})
        # `UID n:*` always matches the last message even when its UID is below n.
        if last_uid is not None:
            found = [u for u in found if u > last_uid]
        return found

    def _describe(self, conn: _Conn, uids: list[int]) -> list[IncomingRef]:
        fetch_items = (
            "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID FROM SUBJECT)])"
        )
        data = wire.ok(conn.client.uid("FETCH", wire.uid_set_text(uids), fetch_items), "UID FETCH")
        found: dict[int, IncomingRef] = {}
        wanted = set(uids)
        limit = int(self.config.max_message_bytes)
        for meta, literal in wire.fetch_items(data):
            m_uid, m_size = wire.FETCH_UID.search(meta), wire.FETCH_SIZE.search(meta)
            if not (m_uid and m_size):
                continue
            uid = int(m_uid.group(1))
            if uid not in wanted:
                continue
            mid, from_, subject = parse_headers(literal or b"")
            size = int(m_size.group(1))
            found[uid] = IncomingRef(
                key=str(uid),
                uid=uid,
                uidvalidity=conn.uidvalidity,
                size=size,
                message_id=mid,
                from_header=from_,
                subject=subject,
                oversize=size > limit,
                identity=mid or "",
                arrived_at=wire.parse_internaldate(meta),
            )
        oversize = [u for u, r in found.items() if r.oversize]
        if oversize:
            for uid, block in self._peek_headers(conn, oversize).items():
                found[uid] = replace(found[uid], headers=block)
        return [found[u] for u in sorted(found)]

    def baseline(self, since: datetime | None) -> Baseline:
        """The folder's current end (UIDNEXT-1), plus the mail up to it that arrived since
        `since` (by INTERNALDATE), which is to be processed all the same."""
        conn = self._ensure()
        uidvalidity = conn.uidvalidity
        # UIDNEXT as of SELECT: mail delivered after it counts as new, which is right.
        if conn.uidnext is not None:
            last = conn.uidnext - 1
        else:
            found = self._command(lambda c: self._search_after(c, None))
            last = max(found, default=0)
        if since is None or last <= 0:
            return Baseline(uidvalidity, last)
        # SEARCH SINCE compares dates in the server's zone: a day early, then exact times.
        day = (since - timedelta(days=1)).strftime("%d-%b-%Y")
        criteria = f"UID 1:{last} SINCE {day}"
        if self.config.processed_keyword and not self.config.processed_folder:
            criteria += f" UNKEYWORD {self.config.processed_keyword}"
        data = self._command(lambda c: wire.ok(c.client.uid("SEARCH", criteria), "UID SEARCH"))
        uids = sorted({int(x) for x in b" ".join(d for d in data if d).split()} - {0})
        uids = [u for u in uids if u <= last]
        refs: list[IncomingRef] = []
        batch = max(1, int(self.config.batch_size))
        for start in range(0, len(uids), batch):
            chunk = uids[start : start + batch]
            described = self._command(partial(self._describe, uids=chunk))
            refs.extend(
                r
                for r in described
                if r.uidvalidity == uidvalidity and (r.arrived_at is None or r.arrived_at >= since)
            )
        return Baseline(uidvalidity, last, catch_up=tuple(refs))

    def _peek_headers(self, conn: _Conn, uids: list[int]) -> dict[int, bytes]:
        items = f"(UID BODY.PEEK[HEADER]<0.{HEADER_PEEK_BYTES}>)"
        return wire.literals_by_uid(
            wire.ok(conn.client.uid("FETCH", wire.uid_set_text(uids), items), "UID FETCH")
        )

    def fetch(self, refs: Iterable[IncomingRef]) -> Iterator[tuple[IncomingRef, bytes]]:
        """Download whole mails in batches (BODY.PEEK: \\Seen untouched); oversize ones skipped."""
        pending = [r for r in refs if not r.oversize and r.uid is not None]
        for chunk in wire.size_batches(
            pending,
            max(1, int(self.config.batch_size)),
            max(_BATCH_BYTES, int(self.config.max_message_bytes)),
        ):
            bodies = self._command(partial(self._fetch_bodies, refs=chunk))
            for ref in chunk:
                raw = bodies.get(ref.uid) if ref.uid is not None else None
                if raw is None:
                    log.warning("UID %s vanished from %s before download", ref.uid, self.source_key)
                    continue
                yield ref, raw

    def _fetch_bodies(self, conn: _Conn, refs: list[IncomingRef]) -> dict[int, bytes]:
        self._check_uidvalidity(conn, refs)
        uids = wire.uid_set_text(r.uid for r in refs if r.uid is not None)
        data = wire.ok(conn.client.uid("FETCH", uids, "(UID BODY.PEEK[])"), "UID FETCH")
        return wire.literals_by_uid(data)

    def _check_uidvalidity(self, conn: _Conn, refs: Iterable[IncomingRef]) -> None:
        for ref in refs:
            if ref.uidvalidity is not None and ref.uidvalidity != conn.uidvalidity:
                raise StaleUidValidity(
                    f"{self.source_key}: UIDVALIDITY is now {conn.uidvalidity}, "
                    f"the mail was listed under {ref.uidvalidity}"
                )

    def mark_done_many(self, refs: Sequence[DoneRef]) -> dict[DoneRef, SourceError]:
        """Move a page of mails to the processed folder (created when missing) or set the
        keyword on them, one command per page; the failures by ref, the rest are done.

        Each ref is (UID as text, the UIDVALIDITY stored with it): a UID listed under another
        UIDVALIDITY is never touched (StaleUidValidity), so a renumbered folder never gets
        the wrong mail moved. A UID already gone (moved by someone else) counts as done.
        When the command for the whole set fails, the mails are moved one by one, so one bad
        UID never holds back the others.
        """
        failures: dict[DoneRef, SourceError] = {}

        def run(conn: _Conn) -> None:
            failures.clear()  # a retry on a new connection starts over (moving is idempotent)
            wanted: dict[int, list[DoneRef]] = {}
            for done in refs:
                key, uidvalidity = done
                if uidvalidity is not None and uidvalidity != conn.uidvalidity:
                    failures[done] = StaleUidValidity(
                        f"{self.source_key}: UIDVALIDITY is now {conn.uidvalidity}, "
                        f"UID {key} was listed under {uidvalidity}"
                    )
                else:
                    wanted.setdefault(int(key), []).append(done)
            if not wanted:
                return
            if self.config.processed_folder:
                # A folder that cannot be made fails the page whole, not each mail.
                self._ensure_folder(conn, self.config.processed_folder)
            uids = sorted(wanted)
            error = self._try_mark_set(conn, uids)
            if error is None:
                return
            if len(uids) == 1:
                failures.update(dict.fromkeys(wanted[uids[0]], error))
                return
            log.warning(
                "%s: marking %d mails at once failed (%s); one by one",
                self.source_key,
                len(uids),
                error,
            )
            for uid in uids:
                error = self._try_mark_set(conn, [uid])
                if error is not None:
                    failures.update(dict.fromkeys(wanted[uid], error))

        if refs:
            self._command(run)
        return dict(failures)

    def _try_mark_set(self, conn: _Conn, uids: list[int]) -> SourceError | None:
        """Mark a set; the server's refusal, if it refused (a lost connection raises)."""
        client = conn.client
        client.untagged_responses.pop("EXPUNGEISSUED", None)
        for _attempt in (1, 2):
            try:
                self._mark_set(conn, uids)
                return None
            except imaplib.IMAP4.abort:
                raise
            except (SourceError, imaplib.IMAP4.error) as exc:
                error = wire.as_source_error(exc)
            # RFC 5530 EXPUNGEISSUED: another session expunged a mail of the set, which this
            # one had not heard of; the refusal brings the news, so a second try goes through.
            if client.untagged_responses.pop("EXPUNGEISSUED", None) is None:
                break
        return error

    def _mark_set(self, conn: _Conn, uids: list[int]) -> None:
        """One page's mark: UID MOVE, else COPY + \\Deleted + UID EXPUNGE, else a keyword."""
        uid_set = wire.uid_set_text(uids)
        if self.config.processed_folder:
            self._move(conn, uid_set, self.config.processed_folder)
        elif self.config.processed_keyword:
            self._store(conn, uid_set, "+FLAGS.SILENT", f"({self.config.processed_keyword})")

    def _ensure_folder(self, conn: _Conn, folder: str) -> None:
        if self._processed_ready:
            return
        if not conn.box.folder.exists(folder):
            try:
                wire.ok(conn.client._simple_command("CREATE", wire.mailbox_name(folder)), "CREATE")
            except SourceError:
                # Another client may have created it meanwhile; check again before failing.
                if not conn.box.folder.exists(folder):
                    raise
        self._processed_ready = True

    def _move(self, conn: _Conn, uid_set: str, folder: str) -> None:
        client, target = conn.client, wire.mailbox_name(folder)
        client.untagged_responses.pop("COPYUID", None)
        if "MOVE" in conn.capabilities:
            wire.ok(client.uid("MOVE", uid_set, target), "UID MOVE")
            self._log_copied(conn, uid_set)
            return
        wire.ok(client.uid("COPY", uid_set, target), "UID COPY")
        self._log_copied(conn, uid_set)
        if "UIDPLUS" in conn.capabilities:
            # UID EXPUNGE removes only these UIDs; a bare EXPUNGE would also purge mail that
            # someone else flagged \Deleted.
            self._store(conn, uid_set, "+FLAGS.SILENT", r"(\Deleted)")
            wire.ok(client.uid("EXPUNGE", uid_set), "UID EXPUNGE")
        else:
            self._store(conn, uid_set, "+FLAGS.SILENT", f"({FALLBACK_KEYWORD})")

    def _log_copied(self, conn: _Conn, uid_set: str) -> None:
        """Say how many of the set the server moved (UIDPLUS's COPYUID); the rest were gone."""
        codes = conn.client.untagged_responses.pop("COPYUID", None) or []
        try:
            moved = sum(wire.set_size(c.split()[1]) for c in codes if isinstance(c, bytes))
        except (ValueError, IndexError):
            return  # a malformed code: only the log line is lost
        log.debug(
            "%s: %d of UIDs %s moved, the rest were gone already", self.source_key, moved, uid_set
        )

    @staticmethod
    def _store(conn: _Conn, uid_set: str, op: str, flags: str) -> None:
        wire.ok(conn.client.uid("STORE", uid_set, op, flags), "UID STORE")

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Block up to `timeout` s; True when the server signalled a change (IDLE) or the
        connection was renewed. Only a wake-up hint: always run the UID catch-up after."""
        deadline = time.monotonic() + max(0.0, timeout)
        if self._conn is None:
            if self._backoff.failures:
                sleep_until(min(deadline, time.monotonic() + self._backoff.current()), stop)
            try:
                self._ensure()
            except (SourceError, ConfigError) as exc:
                log.warning("%s", exc)
                sleep_until(deadline, stop)
                return False
            return True
        conn = self._conn
        if not (self.config.idle and "IDLE" in conn.capabilities):
            sleep_until(deadline, stop)
            return False
        limit = min(
            deadline - time.monotonic(), float(self.config.idle_timeout_seconds), _IDLE_MAX_SECONDS
        )
        try:
            return self._idle(conn, max(0.0, limit), stop)
        except (imaplib.IMAP4.error, OSError, SourceError) as exc:
            log.info("IDLE on %s ended with %s; will reconnect", self.source_key, exc)
            self._drop()
            self._backoff.failed()
            return True

    def _idle(self, conn: _Conn, limit: float, stop: threading.Event | None) -> bool:
        client = conn.client
        for name in _CHANGES:
            client.untagged_responses.pop(name, None)
        tag = client._command("IDLE")
        resp = client._get_response()
        if client.tagged_commands.get(tag):
            # A server may refuse IDLE with a tagged NO/BAD instead of a continuation.
            client.tagged_commands.pop(tag, None)
            raise SourceError(f"IMAP IDLE refused: {resp!r}")
        end = time.monotonic() + limit
        sock = client.socket()
        # imaplib reads through a buffer: a change sent right behind the continuation may
        # already sit in it, where select() cannot see it.
        spoke = _buffered(client)
        while not spoke:
            left = end - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                break
            readable, _, _ = select.select([sock], [], [], min(left, 1.0))
            spoke = bool(readable)
        client.send(b"DONE\r\n")
        while not client.tagged_commands.get(tag):
            client._get_response()
        # typeshed says list[bytes]; imaplib keeps the (type, data) pair there.
        wire.ok(cast("tuple[str, list[Any]]", client.tagged_commands.pop(tag)), "IDLE")
        conn.last_used = time.monotonic()
        changes = [client.untagged_responses.pop(name, None) for name in _CHANGES]
        if spoke and not any(changes):
            log.debug("IDLE woke without a change: %r", client.untagged_responses)
        return any(changes)

    def close(self) -> None:
        """Log out (best effort) and close the socket."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.client.shutdown()

    def __enter__(self) -> ImapSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _buffered(client: imaplib.IMAP4) -> bool:
    """True when imaplib's read buffer already holds server data (checked without blocking)."""
    sock = client.sock
    old = sock.gettimeout()
    sock.settimeout(0)
    try:
        return bool(cast(io.BufferedReader, client.file).peek(1))
    except (OSError, ValueError):
        return False
    finally:
        sock.settimeout(old)
