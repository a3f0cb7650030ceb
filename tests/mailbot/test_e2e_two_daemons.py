"""Two daemons on one data directory (the lock file removed): each mail decided and answered once.

Exactly-once rests on claims in the database, not on the lock file: mail rows are claimed
received/retry -> processing, outbox rows queued -> sending, each with its owner.
"""

from __future__ import annotations

import collections
import signal
import time

import pytest

from tests.mailbot.e2e_support import (
    PW_ENV,
    Db,
    append_all,
    backlog,
    message_id_of,
    replies,
    write_config,
)
from tests.mailbot.test_e2e_crash import _start_run, _wait_started
from tests.support.dovecot import Account, DovecotServer

pytestmark = pytest.mark.dovecot


@pytest.fixture
def account(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> Account:
    acc = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, acc.password)
    return acc


@pytest.mark.parametrize(
    "count", [20, pytest.param(120, marks=pytest.mark.soak, id="soak-120")], ids=str
)
def test_two_daemons_without_the_lock_file_answer_each_mail_once(
    tmp_path, dovecot, account, smtp_server, count
):
    cfg = write_config(
        tmp_path,
        dovecot,
        account,
        smtp_server,
        inbox={"batch_size": 5, "poll_interval_seconds": 2},
        processing={"workers": 0},
    )
    data_dir = tmp_path / "data"
    log = tmp_path / "run.log"
    procs = []
    try:
        first = _start_run(cfg, log)
        procs.append(first)
        _wait_started(data_dir, first)
        (data_dir / "mailbot.lock").unlink()  # an operator "cleaning up"
        second = _start_run(cfg, log)
        procs.append(second)
        _wait_started(data_dir, second)
        mails = backlog(count, "twin")
        append_all(dovecot, account, mails)
        db = Db(data_dir)
        deadline = time.monotonic() + 90 + count
        while time.monotonic() < deadline:
            sent = db.rows(
                "SELECT COUNT(*) AS n FROM outbox WHERE status = 'sent' "
                "AND kind IN ('receipt', 'notice')"
            )[0]["n"]
            if sent >= len(mails) and len(replies(smtp_server.messages)) >= len(mails):
                break
            time.sleep(0.2)
        print(f"{count} mails answered after {time.monotonic() - deadline + 90 + count:.1f} s")
        time.sleep(2.0)  # room for a duplicate to show up
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=30) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    per_mail = collections.Counter(m.in_reply_to for m in replies(smtp_server.messages))
    assert sorted(per_mail) == sorted(message_id_of(m) for m in mails)
    doubled = {mid: n for mid, n in per_mail.items() if n > 1}
    assert not doubled, f"{len(doubled)} receipts sent more than once"
    rows = db.rows("SELECT status FROM mails")
    assert len(rows) == len(mails) and {r["status"] for r in rows} == {"processed"}
    assert "Traceback" not in log.read_text(errors="replace")
