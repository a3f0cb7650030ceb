"""ImapSource against a real Dovecot on a loopback port: UIDs, batches, sizes, moves, IDLE, TLS."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from imap_tools.imap_utf7 import utf7_decode

from mailbot.config import ConfigError, InboxConfig, Secret
from mailbot.sources import (
    FALLBACK_KEYWORD,
    ImapSource,
    IncomingRef,
    Source,
    SourceError,
    StaleUidValidity,
    open_source,
    parse_imap_url,
)
from mailbot.sources.base import received_date
from mailbot.sources.imap_wire import (
    fetch_items,
    ok,
    parse_internaldate,
    size_batches,
    uid_set_text,
)
from tests.support import free_port
from tests.support.dovecot import UTF8_USER, Account, DovecotServer, start_dovecot

pytestmark = pytest.mark.dovecot

PW_ENV = "MAILBOT_TEST_IMAP_PW"


def make_mail(n: int, *, body_bytes: int = 0, msgid: bool = True) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Phường Khương Trung <unit{n}@example.test>"
    msg["To"] = "bdv@example.test"
    msg["Subject"] = f"Gửi Mẫu 01 số {n}"
    if msgid:
        msg["Message-ID"] = f"<m{n}@example.test>"
    msg.set_content(f"Kính gửi Ban Dân vận, thư số {n}.\n" + "x" * body_bytes + "\n")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


@pytest.fixture
def account(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> Account:
    acc = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, acc.password)
    return acc


def inbox(server: DovecotServer, acc: Account, **kw: object) -> InboxConfig:
    base: dict[str, object] = dict(
        url=server.url(acc),
        password=Secret(env=PW_ENV),
        timeout_seconds=10,
        batch_size=2,
    )
    base.update(kw)
    return InboxConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def source_for(dovecot: DovecotServer, account: Account):
    opened: list[ImapSource] = []

    def make(**kw: object) -> ImapSource:
        src = ImapSource(inbox(dovecot, account, **kw))
        opened.append(src)
        return src

    yield make
    for src in opened:
        src.close()


def test_lists_new_mail_by_uid_and_fetches_in_batches(dovecot, account, source_for):
    mails = [make_mail(n) for n in range(5)]
    uids = [dovecot.append(account, raw) for raw in mails]
    src = source_for(batch_size=2)
    assert isinstance(src, Source)
    refs = list(src.new_messages(None))
    assert [r.uid for r in refs] == uids
    assert [r.message_id for r in refs] == [f"<m{n}@example.test>" for n in range(5)]
    assert [r.size for r in refs] == [len(m) for m in mails]
    assert refs[0].subject == "Gửi Mẫu 01 số 0"
    assert "unit0@example.test" in (refs[0].from_header or "")
    assert all(r.uidvalidity == src.uidvalidity() for r in refs)
    fetched = list(src.fetch(refs))
    assert [ref.uid for ref, _ in fetched] == uids
    assert [raw for _, raw in fetched] == mails


def test_after_last_uid_nothing_is_new_even_with_star_range(dovecot, account, source_for):
    # `UID n:*` matches the newest message even when n is beyond it; it must not come back.
    first = dovecot.append(account, make_mail(1))
    last = dovecot.append(account, make_mail(2))
    src = source_for()
    assert [r.uid for r in src.new_messages(first)] == [last]
    assert list(src.new_messages(last)) == []
    assert list(src.new_messages(last + 10)) == []
    newer = dovecot.append(account, make_mail(3))
    assert [r.uid for r in src.new_messages(last)] == [newer]


def test_known_callback_skips(dovecot, account, source_for):
    for n in range(3):
        dovecot.append(account, make_mail(n))
    src = source_for()
    refs = list(src.new_messages(None, known=lambda r: r.message_id == "<m1@example.test>"))
    assert [r.message_id for r in refs] == ["<m0@example.test>", "<m2@example.test>"]


def _session_output_bytes(server: DovecotServer, user: str) -> list[int]:
    pattern = re.compile(rf"imap\({re.escape(user)}\).*Disconnected:.* out=(\d+)")
    return [int(m.group(1)) for m in pattern.finditer(server.log())]


def test_oversize_mail_is_listed_not_downloaded(dovecot, account, source_for):
    small = dovecot.append(account, make_mail(1))
    big_raw = make_mail(2, body_bytes=300_000)
    big = dovecot.append(account, big_raw)
    src = source_for(max_message_bytes=100_000)
    refs = {r.uid: r for r in src.new_messages(None)}
    assert not refs[small].oversize and refs[small].headers == b""
    ref = refs[big]
    assert ref.oversize and ref.size == len(big_raw)
    assert b"Subject:" in ref.headers and b"unit2@example.test" in ref.headers
    assert len(ref.headers) < 5_000
    fetched = list(src.fetch(refs.values()))
    assert [r.uid for r, _ in fetched] == [small]
    src.close()
    assert big in dovecot.uids(account)  # kept on the server
    # The server's own accounting: no session of this user sent anything near 300 kB.
    deadline = time.monotonic() + 5
    while not (outs := _session_output_bytes(dovecot, account.username)) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert outs and max(outs) < 100_000


def test_seen_flag_is_neither_required_nor_set(dovecot, account, source_for):
    read_by_staff = dovecot.append(account, make_mail(1), flags=[r"\Seen"])
    unread = dovecot.append(account, make_mail(2))
    src = source_for()
    refs = list(src.new_messages(None))
    assert [r.uid for r in refs] == [read_by_staff, unread]
    assert len(list(src.fetch(refs))) == 2
    assert r"\Seen" not in dovecot.flags(account, unread)
    assert r"\Seen" in dovecot.flags(account, read_by_staff)


def test_mark_done_moves_to_created_vietnamese_folder(dovecot, account, source_for):
    folder = "Đã xử lý"
    uid = dovecot.append(account, make_mail(1))
    other = dovecot.append(account, make_mail(2), flags=[r"\Seen"])
    src = source_for(processed_folder=folder)
    [ref, ref2] = list(src.new_messages(None))
    assert src.mark_done_many([(ref.key, ref.uidvalidity)]) == {}
    assert src.mark_done_many([(ref.key, ref.uidvalidity)]) == {}  # a repeat after a crash
    assert src.mark_done_many([(str(ref2.uid), None)]) == {}  # without a stored UIDVALIDITY
    assert dovecot.uids(account) == []
    assert len(dovecot.uids(account, folder)) == 2
    moved = dovecot.uids(account, folder)
    assert r"\Seen" in dovecot.flags(account, moved[1], folder)  # flags travel with the mail
    assert r"\Seen" not in dovecot.flags(account, moved[0], folder)
    client = dovecot.connect(account, folder=None)
    try:
        typ, data = client.list()
        names = b"\n".join(d for d in data if isinstance(d, bytes))
        # Sent as modified UTF-7 (RFC 3501), which decodes back to the Vietnamese name.
        assert names.isascii()
        assert folder in utf7_decode(names)
    finally:
        client.logout()
    assert uid and other


def test_mark_done_with_keyword_keeps_mail_in_place(dovecot, account, source_for):
    uid = dovecot.append(account, make_mail(1))
    keep = dovecot.append(account, make_mail(2))
    src = source_for(processed_folder=None, processed_keyword="$MailbotDone")
    assert src.mark_done_many([(str(uid), None)]) == {}
    assert dovecot.uids(account) == [uid, keep]
    assert "$MailbotDone" in dovecot.flags(account, uid)
    assert [r.uid for r in src.new_messages(None)] == [keep]


def _commands(
    src: ImapSource,
    monkeypatch: pytest.MonkeyPatch,
    refuse: Callable[[str, str], bool] = lambda command, uids: False,
) -> list[tuple[str, str]]:
    """Record the UID commands the source sends (name, UID set); `refuse` answers NO instead."""
    client = src._ensure().client
    real = client.uid
    sent: list[tuple[str, str]] = []

    def uid(command: str, *args: str) -> tuple[str, list[object]]:
        sent.append((command.upper(), args[0]))
        if refuse(command.upper(), args[0]):
            return "NO", [b"refused for the test"]
        return real(command, *args)

    monkeypatch.setattr(client, "uid", uid)
    return sent


def _marks(sent: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(c, u) for c, u in sent if c in ("MOVE", "COPY", "STORE", "EXPUNGE")]


def test_a_page_moves_with_one_command_even_when_a_uid_vanished(
    dovecot, account, source_for, monkeypatch
):
    uids = [dovecot.append(account, make_mail(n)) for n in range(1, 6)]
    src = source_for(processed_folder="mailbot-processed", batch_size=50)
    page = [(r.key, r.uidvalidity) for r in src.new_messages(None)]
    # Staff move the third mail elsewhere meanwhile: gone already counts as done.
    client = dovecot.connect(account)
    try:
        client.create("Archive")
        assert client.uid("MOVE", str(uids[2]), "Archive")[0] == "OK"
    finally:
        client.logout()
    sent = _commands(src, monkeypatch)
    assert src.mark_done_many(page) == {}
    # Dovecot refuses the first try with EXPUNGEISSUED (this session had not heard of the
    # move); the second try of the same set goes through.
    assert _marks(sent) == [("MOVE", f"{uids[0]}:{uids[4]}")] * 2
    assert dovecot.uids(account) == []
    assert len(dovecot.uids(account, "mailbot-processed")) == 4
    assert len(dovecot.uids(account, "Archive")) == 1


def test_a_refused_page_is_moved_one_by_one(dovecot, account, source_for, monkeypatch):
    uids = [dovecot.append(account, make_mail(n)) for n in range(1, 5)]
    src = source_for(processed_folder="mailbot-processed", batch_size=50)
    page = [(r.key, r.uidvalidity) for r in src.new_messages(None)]
    bad = str(uids[1])
    sent = _commands(src, monkeypatch, refuse=lambda c, u: c == "MOVE" and (":" in u or u == bad))
    failures = src.mark_done_many(page)
    assert list(failures) == [page[1]]
    assert "refused for the test" in str(failures[page[1]])
    assert _marks(sent) == [("MOVE", f"{uids[0]}:{uids[3]}")] + [("MOVE", str(u)) for u in uids]
    assert dovecot.uids(account) == [uids[1]]  # left in place, tried again next round
    assert len(dovecot.uids(account, "mailbot-processed")) == 3


def test_a_stale_ref_in_a_page_is_left_and_the_rest_moved(dovecot, account, source_for):
    uids = [dovecot.append(account, make_mail(n)) for n in range(1, 4)]
    src = source_for(processed_folder="mailbot-processed", batch_size=50)
    page = [(r.key, r.uidvalidity) for r in src.new_messages(None)]
    stale = (page[0][0], (page[0][1] or 0) + 1)
    failures = src.mark_done_many([stale, *page[1:]])
    assert list(failures) == [stale]
    assert isinstance(failures[stale], StaleUidValidity)
    assert dovecot.uids(account) == [uids[0]]


def test_keyword_for_a_page_is_one_store(dovecot, account, source_for, monkeypatch):
    uids = [dovecot.append(account, make_mail(n)) for n in range(1, 4)]
    src = source_for(processed_folder=None, processed_keyword="$MailbotDone")
    sent = _commands(src, monkeypatch)
    assert src.mark_done_many([(str(u), None) for u in uids]) == {}
    assert _marks(sent) == [("STORE", f"{uids[0]}:{uids[2]}")]
    assert all("$MailbotDone" in dovecot.flags(account, u) for u in uids)


def test_uidvalidity_matches_server_and_guards_stale_refs(dovecot, account, source_for):
    dovecot.append(account, make_mail(1))
    src = source_for()
    client = dovecot.connect(account, folder=None)
    try:
        typ, data = client.status("INBOX", "(UIDVALIDITY)")
        expected = int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))
    finally:
        client.logout()
    assert src.uidvalidity() == expected
    [ref] = list(src.new_messages(None))
    stale = dataclasses.replace(ref, uidvalidity=expected + 1)
    with pytest.raises(StaleUidValidity):
        list(src.fetch([stale]))
    failures = src.mark_done_many([(stale.key, stale.uidvalidity)])
    assert isinstance(failures[(stale.key, expected + 1)], StaleUidValidity)
    assert dovecot.uids(account) == [ref.uid]


def test_idle_wakes_up_when_mail_arrives(dovecot, account, source_for):
    src = source_for(idle=True)
    assert list(src.new_messages(None)) == []
    started = time.monotonic()
    assert src.wait(1.0) is False
    assert 0.8 <= time.monotonic() - started < 5

    timer = threading.Timer(0.5, lambda: dovecot.append(account, make_mail(7)))
    timer.start()
    try:
        started = time.monotonic()
        woke = False
        # A spurious early return is allowed (IDLE is only a hint); missing the mail is not.
        while not woke and time.monotonic() - started < 15:
            woke = src.wait(15 - (time.monotonic() - started))
        elapsed = time.monotonic() - started
    finally:
        timer.join()
    assert woke is True
    assert elapsed < 10
    assert [r.message_id for r in src.new_messages(None)] == ["<m7@example.test>"]


def test_wait_stops_on_event(dovecot, account, source_for):
    src = source_for(idle=True)
    src.uidvalidity()  # connect
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    assert src.wait(30.0, stop=stop) is False
    assert time.monotonic() - started < 5
    assert list(src.new_messages(None)) == []  # the connection is still usable


def test_reconnects_after_the_server_drops_the_connection(dovecot, account, source_for):
    first = dovecot.append(account, make_mail(1))
    src = source_for()
    assert [r.uid for r in src.new_messages(None)] == [first]
    dovecot.kick(account)
    second = dovecot.append(account, make_mail(2))
    assert [r.uid for r in src.new_messages(first)] == [second]


def test_idle_notices_a_dropped_connection(dovecot, account, source_for):
    src = source_for(idle=True)
    src.uidvalidity()
    threading.Timer(0.5, lambda: dovecot.kick(account)).start()
    started = time.monotonic()
    assert src.wait(20.0) is True  # a wake-up, so the caller runs its catch-up
    assert time.monotonic() - started < 10
    uid = dovecot.append(account, make_mail(3))
    assert [r.uid for r in src.new_messages(None)] == [uid]


def test_utf8_password(dovecot, monkeypatch):
    acc = UTF8_USER
    assert not acc.password.isascii()
    monkeypatch.setenv(PW_ENV, acc.password)
    uid = dovecot.append(acc, make_mail(1))
    with ImapSource(inbox(dovecot, acc)) as src:
        assert uid in [r.uid for r in src.new_messages(uid - 1)]


def test_wrong_password_and_unreachable_server(dovecot, account, monkeypatch):
    monkeypatch.setenv(PW_ENV, "not the password")
    with ImapSource(inbox(dovecot, account)) as src, pytest.raises(SourceError):
        src.uidvalidity()
    dead = InboxConfig(
        url=f"imap://x@127.0.0.1:{free_port()}", password=Secret(env=PW_ENV), timeout_seconds=2
    )
    with ImapSource(dead) as src:
        with pytest.raises(SourceError):
            list(src.new_messages(None))
        started = time.monotonic()
        assert src.wait(0.5) is False  # never raises; backs off within the timeout
        assert time.monotonic() - started < 3


def test_starttls_and_imaps(dovecot_tls, monkeypatch):
    acc = dovecot_tls.add_user()
    monkeypatch.setenv(PW_ENV, acc.password)
    uid = dovecot_tls.append(acc, make_mail(1))
    ctx = dovecot_tls.client_context()
    for scheme in ("imap", "imaps"):
        config = InboxConfig(
            url=dovecot_tls.url(acc, scheme=scheme), password=Secret(env=PW_ENV), timeout_seconds=10
        )
        src = open_source(config, ssl_context=ctx)
        try:
            assert [r.uid for r in src.new_messages(None)] == [uid]
        finally:
            src.close()
    logins = [
        line
        for line in dovecot_tls.log().splitlines()
        if f"user=<{acc.username}>" in line and "Login:" in line
    ]
    assert logins and all("TLS" in line for line in logins[-2:])
    # The self-signed certificate is not trusted by default: no silent fallback to plain text.
    config = InboxConfig(url=dovecot_tls.url(acc), password=Secret(env=PW_ENV), timeout_seconds=5)
    with ImapSource(config) as src, pytest.raises(SourceError):
        src.uidvalidity()


def _unavailable(exc: Exception) -> None:
    """In CI a missing Dovecot is a failure, as for the shared fixture; elsewhere a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"dovecot unavailable in CI: {exc}")
    pytest.skip(f"dovecot unavailable: {exc}")


@pytest.fixture(scope="module")
def dovecot_without_move():
    caps = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UNSELECT NAMESPACE UIDPLUS"
    try:
        server = start_dovecot(extra_conf=f"imap_capability = {caps}\n")
    except Exception as exc:  # noqa: BLE001 - same rule as the shared fixture
        _unavailable(exc)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dovecot_without_uidplus():
    caps = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UNSELECT NAMESPACE"
    try:
        server = start_dovecot(extra_conf=f"imap_capability = {caps}\n")
    except Exception as exc:  # noqa: BLE001
        _unavailable(exc)
    yield server
    server.stop()


def test_move_without_move_expunges_only_that_uid(dovecot_without_move, monkeypatch):
    server = dovecot_without_move
    acc = server.add_user()
    monkeypatch.setenv(PW_ENV, acc.password)
    done = server.append(acc, make_mail(1))
    # Staff flagged this one \Deleted in their client; a bare EXPUNGE would destroy it.
    staff_deleted = server.append(acc, make_mail(2), flags=[r"\Deleted"])
    also = server.append(acc, make_mail(3))
    with ImapSource(inbox(server, acc, processed_folder="mailbot-processed")) as src:
        assert "MOVE" not in src._ensure().capabilities
        sent = _commands(src, monkeypatch)
        assert src.mark_done_many([(str(done), None), (str(also), None)]) == {}
    page = f"{done},{also}"
    assert _marks(sent) == [("COPY", page), ("STORE", page), ("EXPUNGE", page)]
    assert server.uids(acc) == [staff_deleted]
    assert len(server.uids(acc, "mailbot-processed")) == 2


def test_move_without_uidplus_copies_and_marks(dovecot_without_uidplus, monkeypatch):
    server = dovecot_without_uidplus
    acc = server.add_user()
    monkeypatch.setenv(PW_ENV, acc.password)
    done = server.append(acc, make_mail(1))
    also = server.append(acc, make_mail(2))
    with ImapSource(inbox(server, acc, processed_folder="mailbot-processed")) as src:
        sent = _commands(src, monkeypatch)
        assert src.mark_done_many([(str(done), None), (str(also), None)]) == {}
    assert _marks(sent) == [("COPY", f"{done}:{also}"), ("STORE", f"{done}:{also}")]
    assert server.uids(acc) == [done, also]  # nothing removed without UID EXPUNGE
    assert FALLBACK_KEYWORD in server.flags(acc, done)
    assert FALLBACK_KEYWORD in server.flags(acc, also)
    assert len(server.uids(acc, "mailbot-processed")) == 2


def test_parse_imap_url():
    t = parse_imap_url("imap://bdv%40hanoi.gov.vn@mail.example.test/%C4%90%C3%A3%20nh%E1%BA%ADn")
    assert (t.scheme, t.host, t.port, t.username) == (
        "imap",
        "mail.example.test",
        143,
        "bdv@hanoi.gov.vn",
    )
    assert t.folder == "Đã nhận"
    assert parse_imap_url("imaps://h").port == 993
    assert parse_imap_url("IMAPS://h:1993/").port == 1993
    assert parse_imap_url("imaps://h/").folder is None
    for bad in ("imap://u:secret@h/", "pop3://h", "imap:///INBOX", "imap://h:x/"):
        with pytest.raises(ConfigError):
            parse_imap_url(bad)


def test_no_username_is_a_config_error():
    with pytest.raises(ConfigError):
        ImapSource(InboxConfig(url="imap://127.0.0.1:1/"))


def test_incoming_ref_is_immutable():
    ref = IncomingRef(key="1", uid=1, uidvalidity=5, size=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.uid = 2  # type: ignore[misc]


def test_fetch_response_shapes():
    # UID before the literal (Dovecot), UID after it (other servers), and an unsolicited
    # FLAGS update in between: each becomes one (metadata, literal) pair.
    data = [
        (b"1 (UID 11 RFC822.SIZE 5 BODY[] {5}", b"hello"),
        b")",
        (b"2 (BODY[] {3}", b"abc"),
        b" UID 12 RFC822.SIZE 3)",
        b"3 (UID 13 FLAGS (\\Seen))",
    ]
    items = list(fetch_items(data))
    assert [lit for _, lit in items] == [b"hello", b"abc", None]
    assert [re.search(rb"UID (\d+)", meta).group(1) for meta, _ in items] == [b"11", b"12", b"13"]
    assert b"RFC822.SIZE 3" in items[1][0]


def test_download_batches_are_bounded_by_count_and_bytes():
    refs = [
        IncomingRef(key=str(n), uid=n, uidvalidity=1, size=size)
        for n, size in enumerate([10, 10, 10, 50, 10, 10], start=1)
    ]
    assert [[r.uid for r in c] for c in size_batches(refs, 2, 30)] == [[1, 2], [3], [4], [5, 6]]
    assert [[r.uid for r in c] for c in size_batches(refs, 10, 1000)] == [[1, 2, 3, 4, 5, 6]]


def test_uid_sets_are_compact():
    assert uid_set_text([9, 1, 2, 3, 7, 10, 2]) == "1:3,7,9:10"
    assert uid_set_text([5]) == "5"
    assert uid_set_text([]) == ""


def test_a_refused_command_names_the_command_and_the_server_text():
    assert ok(("OK", [b"done"]), "NOOP") == [b"done"]
    with pytest.raises(SourceError) as info:
        ok(("NO", [b"[TRYCREATE] Mailbox doesn't exist: X"]), "UID MOVE")
    assert str(info.value) == "IMAP UID MOVE failed: NO [TRYCREATE] Mailbox doesn't exist: X"


def test_selecting_a_missing_folder_is_a_source_error(dovecot, account, source_for):
    src = source_for(folder="Không có thư mục này")
    with pytest.raises(SourceError, match=r"SELECT 'Không có thư mục này' failed: NO"):
        src.uidvalidity()


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (b'1 (UID 7 INTERNALDATE "19-Feb-2022 23:50:00 +0700" RFC822.SIZE 9', "2022-02-19T16:50"),
        (b'2 (INTERNALDATE " 3-Mar-2022 01:05:09 -0130" UID 8', "2022-03-03T02:35"),
        (b"3 (UID 9 RFC822.SIZE 9", None),
        (b'4 (UID 9 INTERNALDATE "31-Foo-2022 00:00:00 +0000"', None),
    ],
)
def test_internaldate_is_read_as_utc(meta, expected):
    when = parse_internaldate(meta)
    assert (when.isoformat(timespec="minutes")[:16] if when else None) == expected


def test_received_header_gives_the_delivery_time():
    block = (
        b"Received: from mx by mail.thanhxuan.example;\r\n Sat, 19 Feb 2022 23:50:00 +0700\r\n"
        b"Received: from laptop by mx; Sat, 19 Feb 2022 23:49:00 +0700\r\n"
        b"From: a@b.example\r\n\r\n"
    )
    assert received_date(block) == datetime(2022, 2, 19, 16, 50, tzinfo=UTC)
    assert received_date(b"From: a@b.example\r\n\r\n") is None
    assert received_date(b"Received: from x; not a date\r\n\r\n") is None
    assert received_date(b"Received: from x; Sat, 19 Feb 2022 23:50:00 -0000\r\n\r\n") is None
