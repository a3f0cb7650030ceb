"""The outbox when the database refuses to record: what SMTP accepted is never sent again."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot import db as dbm
from mailbot import outbox
from mailbot.claims import Claimant, holder_alive
from mailbot.config import OutgoingConfig
from mailbot.transport import DirSender
from tests.mailbot.test_outbox import FROM, T0, outbox_row, queue


@pytest.fixture
def database(tmp_path: Path) -> Iterator[dbm.Database]:
    # A short busy timeout: a locked database fails fast here, as a long lock would.
    database = dbm.open_database(tmp_path / "data", busy_timeout_ms=200)
    yield database
    database.dispose()


class LockingSender(DirSender):
    """A sink that counts sends; the first send locks the database right after acceptance."""

    def __init__(self, sink: Path, db_path: Path) -> None:
        super().__init__(sink)
        self.db_path = db_path
        self.calls = 0
        self.holder: sqlite3.Connection | None = None

    def send(self, raw: bytes, from_addr: str, recipients: list[str]):  # noqa: ANN201
        self.calls += 1
        refused = super().send(raw, from_addr, recipients)
        if self.holder is None:
            self.holder = sqlite3.connect(self.db_path, isolation_level=None)
            self.holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        return refused

    def unlock(self) -> None:
        assert self.holder is not None
        self.holder.execute("ROLLBACK")
        self.holder.close()


def test_an_accepted_receipt_whose_record_fails_is_never_resent(
    database: dbm.Database, tmp_path: Path
) -> None:
    [first, second] = queue(database, "receipt", ["vanthu@phuong.example"], n=2)
    sender = LockingSender(tmp_path / "sent", database.path)
    config = OutgoingConfig(url="dir:x", from_address=FROM)
    state = outbox.SenderState()
    clock = lambda: T0  # noqa: E731

    # Accepted, then the record cannot be written: counted as sent, kept in memory.
    assert outbox.deliver(database, sender, config, clock, state=state) == (1, 0)
    assert set(state.accepted) == {first}
    # Every pass while the database stays locked: nothing sent again, nothing new sent.
    for _ in range(4):
        assert outbox.deliver(database, sender, config, clock, state=state) == (0, 0)
    assert sender.calls == 1
    # Another process sweeping orphaned claims does not take it: its holder lives.
    sender.unlock()
    other = outbox.SenderState(Claimant("elsewhere:1:1"))
    assert holder_alive(state.claimant.token, other.claimant) is True
    outbox.release_orphaned_claims(database, T0, other, now=T0)
    assert outbox_row(database, first).status == "sending"
    # Space/lock back: the record is written first, then the rest goes out once each.
    assert outbox.deliver(database, sender, config, clock, state=state) == (1, 0)
    assert not state.accepted
    assert outbox_row(database, first).status == "sent"
    assert outbox_row(database, second).status == "sent"
    assert sender.calls == 2
    assert len(list((tmp_path / "sent").iterdir())) == 2


def test_a_claim_of_a_dead_process_is_released_at_once_a_live_one_never(
    database: dbm.Database,
) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mailbot.claims import Claimant as C; print(C.for_this_process().token)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = proc.stdout.strip()
    [a, b] = queue(database, "reminder", ["x@phuong.example"], n=2)
    me = outbox.SenderState()
    with database.session() as s:
        dbm.claim_outgoing(s, [a], T0, dead)
        dbm.claim_outgoing(s, [b], T0, me.claimant.token)
    later = T0 + outbox.CLAIM_TIMEOUT * 10
    other = outbox.SenderState(Claimant("elsewhere:1:1"))
    assert outbox.release_orphaned_claims(database, T0, other, now=later) == [a]
    assert outbox_row(database, b).status == "sending"


def test_a_mail_is_claimed_by_one_daemon_and_given_back_as_it_was(
    database: dbm.Database,
) -> None:
    from tests.mailbot.db.support import receive

    with database.session() as s:
        mail = receive(s)
        mail_id = mail.id
    with database.session() as s:
        assert dbm.claim_mails(s, [mail_id], "a:1:1", T0) == [mail_id]
        assert dbm.claim_mails(s, [mail_id], "b:2:2", T0) == []  # the second daemon loses
        assert dbm.mail_claims(s) == [(mail_id, "a:1:1", T0)]
        assert dbm.release_mail_claims(s, [mail_id], holder="b:2:2") == []
        assert dbm.release_mail_claims(s, [mail_id], holder="a:1:1") == [mail_id]
        back = dbm.get_mail(s, mail_id)
        assert back is not None
        assert (back.status, back.claimed_by, back.attempts) == ("received", None, 0)


def test_mailbot_outbox_retry_queues_failed_mail_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailbot.cli import main

    data = tmp_path / "data"
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(f'[storage]\ndata_dir = "{data}"\n', encoding="utf-8")
    with dbm.open_database(data) as database:
        [a, b] = queue(database, "receipt", ["vanthu@phuong.example"], n=2)
        with database.session() as s:
            for outbox_id in (a, b):
                row = dbm.get_outbox(s, outbox_id)
                assert row is not None
                dbm.mark_send_failed(s, row, "550 mailbox full", T0, temporary=False)
    assert main(["--config", str(cfg), "outbox", "retry", "--id", str(a)]) == 0
    out = capsys.readouterr().out
    assert "Đã đưa 1 thư vào hàng đợi gửi lại" in out
    assert main(["--config", str(cfg), "outbox", "retry", "--id", str(a), "--id", "99"]) == 1
    err = capsys.readouterr().err
    assert "đang chờ gửi" in err and "không có thư gửi đi mã 99" in err
    assert main(["--config", str(cfg), "outbox", "retry", "--all-failed"]) == 0
    assert f"(mã {b})" in capsys.readouterr().out
    assert main(["--config", str(cfg), "outbox", "retry", "--all-failed"]) == 0
    assert "Không có thư gửi thất bại nào." in capsys.readouterr().out
