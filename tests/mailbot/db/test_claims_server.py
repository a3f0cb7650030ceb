"""Claims on PostgreSQL: rows another transaction is claiming are skipped, never waited for."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from mailbot import db as dbm
from mailbot.db import Database, open_database
from tests.mailbot.db.support import T0, receive
from tests.support.postgres import PASSWORD


def _queue(s, n: int) -> int:
    row = dbm.queue_outgoing(
        s,
        kind="receipt",
        message_id=f"<r{n}@mailbot.invalid>",
        to_addrs=["unit@example.org"],
        subject="Re: Mẫu 01",
        raw=b"From: x\r\n\r\nbody",
        now=T0,
    )
    return row.id


def test_a_row_being_claimed_elsewhere_is_skipped_at_once(pg_url: str, tmp_path: Path) -> None:
    first = open_database(tmp_path, url=pg_url, password=PASSWORD, migrate=False)
    second = open_database(tmp_path, url=pg_url, password=PASSWORD, migrate=False)
    try:
        with first.session() as s:
            ids = [_queue(s, n) for n in range(3)]
            mails = [receive(s, uid=n, sha=f"{n}" * 64).id for n in range(1, 4)]
        with first.session() as a:
            # A claims one outbox row and one mail and keeps its transaction open...
            assert dbm.claim_outgoing(a, ids[:1], T0, "a") == ids[:1]
            assert dbm.claim_mails(a, mails[:1], "a", T0) == mails[:1]
            # ...B, asking for all of them meanwhile, gets the others without waiting.
            started = time.monotonic()
            with second.session() as b:
                assert dbm.claim_outgoing(b, ids, T0, "b") == ids[1:]
                assert dbm.claim_mails(b, mails, "b", T0) == mails[1:]
            assert time.monotonic() - started < 5
        # A committed its claim: nobody else wins the row afterwards either.
        with second.session() as b:
            assert dbm.claim_outgoing(b, ids, T0, "b") == []
            assert dbm.claim_mails(b, mails, "b", T0) == []
        with second.session(write=False) as s:
            holders = {i: by for i, by, _ in dbm.outgoing_claims(s)}
            assert holders == {ids[0]: "a", ids[1]: "b", ids[2]: "b"}
            assert {i: by for i, by, _ in dbm.mail_claims(s)} == {
                mails[0]: "a",
                mails[1]: "b",
                mails[2]: "b",
            }
    finally:
        first.dispose()
        second.dispose()


def test_sqlite_claims_keep_their_compare_and_set(database: Database, backend: str) -> None:
    with database.session() as s:
        ids = [_queue(s, n) for n in range(2)]
    with database.session() as s:
        assert dbm.claim_outgoing(s, ids, T0, "a") == ids
    with database.session() as s:
        assert dbm.claim_outgoing(s, ids, T0, "b") == []


def test_two_daemons_claiming_one_job_run_at_once(pg_url: str, tmp_path: Path) -> None:
    first = open_database(tmp_path, url=pg_url, password=PASSWORD, migrate=False)
    second = open_database(tmp_path, url=pg_url, password=PASSWORD, migrate=False)
    results: list[bool] = []
    try:
        with first.session() as a:
            assert dbm.claim_job_run(a, "reminder", "2022-02-13T08:00+07:00", T0)

            # B checks before A commits (sees nothing), then waits on A's row and loses.
            def b_claims() -> None:
                with second.session() as b:
                    results.append(dbm.claim_job_run(b, "reminder", "2022-02-13T08:00+07:00", T0))
                    dbm.add_event(b, "b-went-on", at=T0)  # its transaction is still good

            thread = threading.Thread(target=b_claims)
            thread.start()
            time.sleep(0.5)
        thread.join(timeout=10)
        assert results == [False]
        with second.session(write=False) as s:
            assert [r.point for r in dbm.job_runs(s, ["reminder"])] == ["2022-02-13T08:00+07:00"]
            assert len(dbm.events_since(s, T0 - timedelta(days=1))) == 1
    finally:
        first.dispose()
        second.dispose()


def test_a_holder_on_another_host_is_gone_when_its_liveness_lock_is_free(
    pg_url: str, tmp_path: Path
) -> None:
    from mailbot.claims import Claimant, claimant_key, releasable

    database = open_database(tmp_path, url=pg_url, password=PASSWORD, migrate=False)
    elsewhere = "another-host:4242:99"
    try:
        with database.session() as s:
            ids = [_queue(s, n) for n in range(2)]
            assert dbm.claim_outgoing(s, ids[:1], T0, elsewhere) == ids[:1]
            assert dbm.claim_outgoing(s, ids[1:], T0, "third-host:7:7") == ids[1:]
        me = Claimant.for_this_process()
        # The other host's daemon lives: its session holds the lock on its token.
        with database.engine.connect() as alive:
            alive.execute(
                text("SELECT pg_advisory_lock_shared(:k)"), {"k": claimant_key(elsewhere)}
            )
            with database.session() as s:
                claims = dbm.outgoing_claims(s)
                gone = dbm.gone_claimants(s, (by for _, by, _ in claims))
                assert gone == {"third-host:7:7"}
                assert releasable(claims, me, T0, timedelta(minutes=30), gone=gone) == ids[1:]
            alive.invalidate()  # the connection is closed, as when its process dies
        # Its connection ended (the daemon killed, its host down): gone as soon as the server
        # has ended that backend (moments, not the claim timeout). The server notices the
        # closed socket on its own time, so a loaded machine may see the lock a little longer.
        deadline = time.monotonic() + 10
        while True:
            with database.session() as s:
                gone = dbm.gone_claimants(s, [elsewhere])
            if gone or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert gone == {elsewhere}
    finally:
        database.dispose()
