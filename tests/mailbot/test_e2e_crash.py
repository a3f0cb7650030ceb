"""The transactional outbox under kill -9: each mail processed once, each receipt sent once.

mailbot runs as a real subprocess (`python -m mailbot.cli`) against a real Dovecot and a real
aiosmtpd. `tests.mailbot.crash_launcher` runs one pass with a stage hook that SIGKILLs the
process right after the Nth commit of a stage; the random test kills `mailbot run` from
outside at a seeded random moment.

The one window that cannot be closed: the SMTP server accepted a receipt and the process dies
before the database says "sent". The restart then sends it again; it is the same stored bytes
with the same Message-ID, so the recipient's mail client shows it once. The random test
accepts such a resend only under that condition and reports how often it happened.
"""

from __future__ import annotations

import collections
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.mailbot.e2e_support import (
    PROCESSED,
    PW_ENV,
    RECEIPT_FIXTURES,
    Db,
    append_all,
    backlog,
    message_id_of,
    replies,
    write_config,
)
from tests.mailbot.intake_support import INTAKE, ROOT, expected_for
from tests.support.dovecot import Account, DovecotServer
from tests.support.postgres import PASSWORD_ENV, mailbox_lock_holders
from tests.support.smtpd import SmtpServer

pytestmark = pytest.mark.dovecot

STATS = re.compile(r"nhận (\d+) thư, xử lý (\d+) \(lỗi (\d+)\), gửi (\d+) thư")
SEED = int(os.environ.get("MAILBOT_CRASH_SEED", "20220218"))


@pytest.fixture
def account(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> Account:
    acc = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, acc.password)
    return acc


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailbot.cli", "--config", str(cfg), *args],
        cwd=cfg.parent,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def poll_killed_at(cfg: Path, crash: str) -> subprocess.CompletedProcess[str]:
    """One `poll --once` pass that kills itself at `crash` (stage:N)."""
    return subprocess.run(
        [sys.executable, "-m", "tests.mailbot.crash_launcher", "--config", str(cfg)]
        + ["--kill-at", crash],
        cwd=cfg.parent,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def expected_submissions(raw: bytes) -> int:
    """How many forms the fixture this mail was made from holds."""
    for name in RECEIPT_FIXTURES:
        template = (INTAKE / name).read_bytes()
        if raw.split(b"Message-ID", 1)[0] == template.split(b"Message-ID", 1)[0]:
            return len(expected_for(INTAKE / name)["submissions"])
    raise AssertionError("not made from a receipt fixture")


def assert_exactly_once(
    tmp_path: Path,
    dovecot: DovecotServer,
    account: Account,
    smtp: SmtpServer,
    mails: list[bytes],
    *,
    allow_same_id_resend: bool = False,
    db_url: str | None = None,
) -> int:
    """Every mail recorded and decided once, answered once; returns the count of resends."""
    db = Db(tmp_path / "data", db_url)
    rows = db.rows("SELECT * FROM mails ORDER BY id")
    originals = [message_id_of(raw) for raw in mails]
    assert sorted(r["message_id"] for r in rows) == sorted(originals), "a mail was lost or doubled"
    assert all(r["status"] == "processed" for r in rows), [dict(r) for r in rows]
    by_mid = {r["message_id"]: r for r in rows}
    for raw, mid in zip(mails, originals, strict=True):
        subs = db.rows("SELECT id FROM submissions WHERE mail_id = ?", by_mid[mid]["id"])
        assert len(subs) == expected_submissions(raw), mid
    outbox = db.rows("SELECT * FROM outbox WHERE kind IN ('receipt', 'notice')")
    assert sorted(o["mail_id"] for o in outbox) == sorted(r["id"] for r in rows)
    assert all(o["status"] == "sent" for o in outbox)

    got = replies(smtp.messages)
    per_original = collections.defaultdict(list)
    for m in got:
        per_original[m.in_reply_to].append(m)
    assert sorted(per_original) == sorted(originals), "a receipt is missing"
    outbox_ids = {o["mail_id"]: o["message_id"] for o in outbox}
    resends = 0
    for mid, answers in per_original.items():
        # Whatever reached the server is the queued mail: its Message-ID, fixed at queueing.
        assert {a.message_id for a in answers} == {outbox_ids[by_mid[mid]["id"]]}
        if len(answers) > 1:
            assert allow_same_id_resend, f"receipt for {mid} sent {len(answers)} times"
            resends += len(answers) - 1
    assert dovecot.uids(account) == []
    assert len(dovecot.uids(account, PROCESSED)) == len(mails)
    return resends


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """None for SQLite in the data directory, else a fresh PostgreSQL database's URL."""
    return str(request.getfixturevalue("pg_url")) if backend == "postgresql" else None


def storage_for(db_url: str | None) -> dict[str, str]:
    """The [storage] keys (beside data_dir) for this database."""
    return {"database_url": db_url, "password_env": PASSWORD_ENV} if db_url else {}


@pytest.mark.parametrize(
    ("crash", "recorded", "decided", "delivered"),
    [
        # Batches of 2 are recorded in one transaction each: killed after the second one.
        # The stages overlap (the mailbox thread fetches while the first batch is decided),
        # so what the later stages had done is a range; none is ahead of the one before.
        ("after-record:2", (4, 4), (0, 2), (0, 2)),
        # Outcomes are recorded up to two of the pool's groups (4 mails) per transaction.
        ("after-process:2", (2, 6), (2, 4), (0, 4)),
        ("after-send:1", (1, 6), (1, 6), (1, 1)),
    ],
)
def test_kill_at_each_stage_then_restart(
    tmp_path, dovecot, account, smtp_server, crash, recorded, decided, delivered, db_url
):
    mails = backlog(6, "crash-" + crash.replace(":", "-"))
    cfg = write_config(
        tmp_path,
        dovecot,
        account,
        smtp_server,
        inbox={"batch_size": 2},
        storage=storage_for(db_url),
    )
    # The robot has met the mailbox already: the backlog comes through the ordinary stages
    # (a first meeting records what it takes in at once, in one transaction).
    assert cli(cfg, "poll", "--once").returncode == 0
    append_all(dovecot, account, mails)

    result = poll_killed_at(cfg, crash)
    assert result.returncode == -signal.SIGKILL, result.stderr
    # It died where it was told to: the stage had committed, no later one ran ahead of it.
    db = Db(tmp_path / "data", db_url)
    n_recorded = len(db.rows("SELECT id FROM mails"))
    n_decided = len(db.rows("SELECT id FROM mails WHERE status = 'processed'"))
    n_delivered = len(db.rows("SELECT id FROM outbox WHERE status = 'sent'"))
    assert recorded[0] <= n_recorded <= recorded[1]
    assert decided[0] <= n_decided <= min(decided[1], n_recorded)
    assert delivered[0] <= n_delivered <= min(delivered[1], n_decided)
    assert len(smtp_server.messages) == n_delivered

    # One ordinary pass after the restart finishes the work, without doing anything twice.
    result = cli(cfg, "poll", "--once")
    assert result.returncode == 0, result.stderr
    m = STATS.search(result.stdout)
    assert m, result.stdout
    fetched, processed, failed, sent = map(int, m.groups())
    assert (fetched, processed, failed, sent) == (
        6 - n_recorded,
        6 - n_decided,
        0,
        6 - n_delivered,
    )
    assert_exactly_once(tmp_path, dovecot, account, smtp_server, mails, db_url=db_url)


def _wait_started(
    data_dir: Path, proc: subprocess.Popen[bytes], timeout: float = 30, db_url: str | None = None
) -> None:
    """Until `mailbot run` holds the data directory lock, or on PostgreSQL the mailbox's
    advisory lock (start-up done)."""
    lock = data_dir / "mailbot.lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mailbot run exited early with {proc.returncode}")
        try:
            if db_url is not None:
                if any(h.endswith(f":{proc.pid}") for h in mailbox_lock_holders(db_url)):
                    return
            elif lock.read_text().strip() == str(proc.pid):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("mailbot run did not start")


def _start_run(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "mailbot.cli", "--config", str(cfg), "run"],
            cwd=cfg.parent,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def test_random_kill_of_the_daemon_loses_nothing(tmp_path, dovecot, account, smtp_server, db_url):
    rng = random.Random(SEED)
    mails = backlog(30, "random")
    append_all(dovecot, account, mails)
    cfg = write_config(
        tmp_path,
        dovecot,
        account,
        smtp_server,
        inbox={"batch_size": 5},
        storage=storage_for(db_url),
    )
    data_dir = tmp_path / "data"
    log = tmp_path / "run.log"
    kills = []
    proc = None
    try:
        # Two kills at seeded random moments while the backlog is worked through.
        for _ in range(2):
            proc = _start_run(cfg, log)
            _wait_started(data_dir, proc, db_url=db_url)
            delay = rng.uniform(0.2, 4.0)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
            kills.append(round(delay, 2))
        proc = _start_run(cfg, log)
        _wait_started(data_dir, proc, db_url=db_url)
        db = Db(data_dir, db_url)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            answered = {m.in_reply_to for m in replies(smtp_server.messages)}
            sent = db.rows(
                "SELECT COUNT(*) AS n FROM outbox WHERE status = 'sent' "
                "AND kind IN ('receipt', 'notice')"
            )[0]["n"]
            if len(answered) == len(mails) and sent == len(mails):
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    resends = assert_exactly_once(
        tmp_path,
        dovecot,
        account,
        smtp_server,
        mails,
        allow_same_id_resend=True,
        db_url=db_url,
    )
    print(f"seed={SEED} kills after {kills} s; resent with the same Message-ID: {resends}")
    assert "Traceback" not in log.read_text(errors="replace")
