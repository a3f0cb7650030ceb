"""MaildirSource on a real directory: listing, identity, oversize, moving processed mail."""

from __future__ import annotations

import hashlib
import mailbox
import os
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbot.config import ConfigError, InboxConfig
from mailbot.sources import MaildirSource, Source, open_source


def make_mail(n: int, *, msgid: bool = True, body_bytes: int = 0) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Hội Phụ nữ <unit{n}@example.test>"
    msg["To"] = "bdv@example.test"
    msg["Subject"] = f"Mẫu 02 — lần {n}"
    if msgid:
        msg["Message-ID"] = f"<md{n}@example.test>"
    msg.set_content(f"Thư số {n}\n" + "y" * body_bytes)
    return msg.as_bytes()


def deliver(
    root: Path, raw: bytes, sub: str = "new", name: str | None = None, mtime: float | None = None
) -> Path:
    """Drop a mail the way an MDA does: write in tmp/, rename into new/ (or cur/)."""
    name = name or f"{time.time_ns()}.P{os.getpid()}.test"
    tmp = root / "tmp" / name
    tmp.write_bytes(raw)
    dest = root / sub / (name + (":2,S" if sub == "cur" else ""))
    os.rename(tmp, dest)
    if mtime is not None:
        os.utime(dest, (mtime, mtime))
    return dest


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    root = tmp_path / "inbox"
    mailbox.Maildir(str(root), create=True)
    return root


def open_md(root: Path, **kw: object) -> MaildirSource:
    return MaildirSource(InboxConfig(url=f"maildir:{root}", **kw), root)  # type: ignore[arg-type]


def test_lists_new_and_cur_oldest_first_and_fetches(maildir):
    now = time.time()
    deliver(maildir, make_mail(2), mtime=now - 10)
    deliver(maildir, make_mail(1), sub="cur", mtime=now - 100)  # staff already read it
    deliver(maildir, make_mail(3), mtime=now)
    src = open_md(maildir)
    assert isinstance(src, Source)
    refs = list(src.new_messages())
    assert [r.message_id for r in refs] == [f"<md{n}@example.test>" for n in (1, 2, 3)]
    assert all(r.uid is None and r.uidvalidity is None for r in refs)
    assert [r.identity for r in refs] == [r.message_id for r in refs]
    assert refs[0].subject == "Mẫu 02 — lần 1"
    assert [raw for _, raw in src.fetch(refs)] == [make_mail(n) for n in (1, 2, 3)]
    assert src.uidvalidity() is None


def test_identity_without_message_id_is_content_hash(maildir):
    raw = make_mail(5, msgid=False)
    deliver(maildir, raw)
    [ref] = list(open_md(maildir).new_messages())
    assert ref.message_id is None
    assert ref.identity == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_known_skips_recorded_mail(maildir):
    deliver(maildir, make_mail(1))
    deliver(maildir, make_mail(2))
    src = open_md(maildir)
    seen = {"<md1@example.test>"}
    assert [r.message_id for r in src.new_messages(known=lambda r: r.identity in seen)] == [
        "<md2@example.test>"
    ]


def test_oversize_is_listed_with_headers_but_not_read(maildir):
    deliver(maildir, make_mail(1, body_bytes=50_000))
    src = open_md(maildir, max_message_bytes=10_000)
    [ref] = list(src.new_messages())
    assert ref.oversize and ref.size > 50_000
    assert b"Message-ID: <md1@example.test>" in ref.headers
    assert list(src.fetch([ref])) == []


def test_mark_done_moves_into_processed_folder_never_deletes(maildir):
    path_new = deliver(maildir, make_mail(1))
    path_cur = deliver(maildir, make_mail(2), sub="cur")
    src = open_md(maildir)
    page = [(ref.key, None) for ref in src.new_messages()]
    assert src.mark_done_many(page) == {}
    assert src.mark_done_many(page) == {}  # again (a crash before recording it): harmless
    assert list(src.new_messages()) == []
    folder = maildir / ".mailbot-processed"
    assert (folder / "new" / path_new.name).read_bytes() == make_mail(1)
    assert (folder / "cur" / path_cur.name).read_bytes() == make_mail(2)  # flags kept
    assert "mailbot-processed" in mailbox.Maildir(str(maildir), create=False).list_folders()


def test_mark_done_with_a_vietnamese_folder(maildir):
    deliver(maildir, make_mail(1))
    src = open_md(maildir, processed_folder="Đã xử lý")
    [ref] = list(src.new_messages())
    assert src.mark_done_many([(ref.key, None)]) == {}
    assert len(list((maildir / ".Đã xử lý" / "new").iterdir())) == 1


def test_a_page_moves_around_a_file_that_cannot_move(maildir):
    names = [deliver(maildir, make_mail(n)).name for n in range(1, 4)]
    src = open_md(maildir)
    page = [(ref.key, None) for ref in src.new_messages()]
    # The second file is renamed away meanwhile (a staff client), the third cannot be moved:
    # its name is taken by a directory in the processed folder.
    os.rename(maildir / "new" / names[1], maildir / "tmp" / names[1])
    blocked = maildir / ".mailbot-processed" / "new" / names[2]
    blocked.mkdir(parents=True)
    (blocked / "x").write_text("x")
    failures = src.mark_done_many(page)
    assert list(failures) == [page[2]]
    assert "cannot move maildir message" in str(failures[page[2]])
    assert (maildir / ".mailbot-processed" / "new" / names[0]).is_file()
    assert (maildir / "new" / names[2]).is_file()  # left where it was, never lost


def test_without_processed_folder_mail_stays(maildir):
    path = deliver(maildir, make_mail(1))
    src = open_md(maildir, processed_folder=None)
    [ref] = list(src.new_messages())
    assert src.mark_done_many([(ref.key, None)]) == {}
    assert path.exists()


def test_mail_vanishing_between_list_and_fetch_is_skipped(maildir):
    path = deliver(maildir, make_mail(1))
    deliver(maildir, make_mail(2))
    src = open_md(maildir)
    refs = list(src.new_messages())
    elsewhere = maildir.parent / "elsewhere"
    os.rename(path, elsewhere)  # another tool took it
    assert [r.message_id for r, _ in src.fetch(refs)] == ["<md2@example.test>"]


def test_wait_wakes_on_delivery(maildir):
    src = open_md(maildir)
    started = time.monotonic()
    assert src.wait(0.6) is False
    assert time.monotonic() - started >= 0.5
    threading.Timer(0.3, lambda: deliver(maildir, make_mail(9))).start()
    started = time.monotonic()
    assert src.wait(10) is True
    assert time.monotonic() - started < 5
    stop = threading.Event()
    stop.set()
    assert src.wait(10, stop=stop) is False


def test_open_source_maildir_paths(tmp_path):
    src = open_source(InboxConfig(url="maildir:var/inbox"), base_dir=tmp_path)
    assert isinstance(src, MaildirSource)
    assert src.path == tmp_path / "var" / "inbox"
    assert (src.path / "new").is_dir() and (src.path / "cur").is_dir()
    src.close()
    absolute = open_source(InboxConfig(url=f"maildir:{tmp_path / 'abs'}"))
    assert isinstance(absolute, MaildirSource) and absolute.path == tmp_path / "abs"
    with pytest.raises(ConfigError):
        open_source(InboxConfig(url="pop3://example.test"))


def test_unchanged_files_are_read_once_across_listings(maildir, monkeypatch):
    src = open_md(maildir)
    deliver(maildir, make_mail(1))
    first = list(src.new_messages())
    opened: list[Path] = []
    real_open = Path.open

    def spy(self: Path, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        opened.append(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy)
    assert list(src.new_messages()) == first
    assert opened == []
    deliver(maildir, make_mail(2))
    assert [r.message_id for r in src.new_messages()] == [
        "<md1@example.test>",
        "<md2@example.test>",
    ]
    assert [p.parent.name for p in opened] == ["tmp", "new"]  # delivered, then read once


def test_delivery_time_is_the_received_header_else_the_file_time(maildir):
    src = open_md(maildir)
    deliver(
        maildir,
        b"Received: from mx by mail.example.test; Sat, 19 Feb 2022 23:50:00 +0700\r\n"
        + make_mail(1),
        mtime=1_700_000_000,
    )
    deliver(maildir, make_mail(2), mtime=1_600_000_000)
    arrived = {r.message_id: r.arrived_at for r in src.new_messages()}
    assert arrived == {
        "<md1@example.test>": datetime(2022, 2, 19, 16, 50, tzinfo=UTC),
        "<md2@example.test>": datetime.fromtimestamp(1_600_000_000, UTC),
    }
