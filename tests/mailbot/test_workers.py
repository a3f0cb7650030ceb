"""The worker pool that decides mail: same outcomes as inline, hostile work bounded."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import rarfile

from mailbot.decision import Tools
from mailbot.intake import process_mail
from mailbot.units import Register
from mailbot.workers import (
    RAR_TOOLS,
    Decider,
    DecisionTimeout,
    WorkerDied,
    local_tools,
    rar_tool_available,
)
from parsers.convert import convert_with_soffice
from tests.mailbot import worker_funcs
from tests.mailbot.intake_support import INTAKE, context


def test_pool_decides_like_the_inline_path():
    jobs = [(p.name, p.read_bytes(), context()) for p in sorted(INTAKE.glob("*.eml"))[:4]]
    inline = Decider(0, 0, 0, inline=lambda: process_mail)
    pool = Decider(2, 60, 2048, inline=lambda: process_mail)
    try:
        a = {k: o for k, o in inline.decide(jobs)}
        b = {k: o for k, o in pool.decide(jobs)}
    finally:
        pool.close()
    assert list(a) == [name for name, _, _ in jobs] and sorted(b) == sorted(a)
    raws = {name: raw for name, raw, _ in jobs}
    for key in a:
        assert (a[key].action, a[key].unit) == (b[key].action, b[key].unit)
        assert [s.form for s in a[key].submissions] == [s.form for s in b[key].submissions]
        # The daemon holds the mail it handed out: a worker does not send it back.
        assert a[key].mail.raw == raws[key] and b[key].mail.raw == b""


def test_a_stuck_mail_is_stopped_and_the_others_still_decided():
    pool = Decider(2, 2, 0, inline=lambda: None, worker_fn=worker_funcs.slow_or_echo)
    try:
        out = list(
            pool.decide([(1, b"a", None), (2, b"slow", None), (3, b"c", None), (4, b"d", None)])
        )
    finally:
        pool.close()
    # Outcomes as they complete: the stuck mail comes last, the others did not wait for it.
    assert [k for k, _ in out][-1] == 2 and sorted(k for k, _ in out) == [1, 2, 3, 4]
    got = dict(out)
    assert got[1] == b"A" and got[3] == b"C" and got[4] == b"D"
    assert isinstance(got[2], DecisionTimeout)


def test_memory_is_capped_per_worker():
    pool = Decider(1, 30, 512, inline=lambda: None, worker_fn=worker_funcs.greedy)
    try:
        out = dict(pool.decide([(1, b"greedy", None), (2, b"ok", None)]))
    finally:
        pool.close()
    assert isinstance(out[1], MemoryError)
    assert out[2] == 2


def test_inline_errors_are_returned_not_raised():
    def boom(raw: bytes, ctx: object) -> None:
        raise ValueError("bad mail")

    out = list(Decider(0, 0, 0, inline=lambda: boom).decide([(7, b"x", None)]))
    assert isinstance(out[0][1], ValueError)


def test_local_tools_name_what_this_machine_offers():
    tools = local_tools()
    assert (tools.office is convert_with_soffice) == (shutil.which("soffice") is not None)
    try:
        rarfile.tool_setup()
    except rarfile.Error:
        assert tools.rar is False
    else:
        assert tools.rar is True


def test_the_rar_tools_looked_for_are_rarfiles_own():
    names = ("UNRAR_TOOL", "UNAR_TOOL", "SEVENZIP_TOOL", "SEVENZIP2_TOOL", "BSDTAR_TOOL")
    assert set(RAR_TOOLS) == {getattr(rarfile, name) for name in names}


def test_no_rar_tool_on_the_path_is_found_without_importing_rarfile(tmp_path):
    code = "import sys; from mailbot.workers import rar_tool_available as f; "
    code += "print(f(), 'rarfile' in sys.modules)"
    env = {**os.environ, "PATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def test_a_rar_tool_is_run_only_when_one_is_on_the_path(tmp_path, monkeypatch):
    monkeypatch.setattr(rarfile, "CURRENT_SETUP", None)  # rarfile caches what it found
    monkeypatch.setenv("PATH", str(tmp_path))
    ran = tmp_path / "ran"
    assert rar_tool_available() is False
    tool = tmp_path / "bsdtar"
    tool.write_text(f"#!/bin/sh\necho ran > {ran}\necho 'bsdtar 3.6.2'\n")
    tool.chmod(0o755)
    assert not ran.exists()
    assert rar_tool_available() is True
    assert ran.exists()
    monkeypatch.setattr(rarfile, "CURRENT_SETUP", None)
    tool.write_text("#!/bin/sh\nexit 1\n")  # on the path but broken
    assert rar_tool_available() is False


def test_tools_travel_to_the_workers_with_the_context():
    raw = (INTAKE / "gmail_khuong_trung.eml").read_bytes()
    ctx = context(tools=Tools(office=convert_with_soffice, rar=True))
    pool = Decider(1, 60, 2048, inline=lambda: process_mail)
    try:
        [(_, outcome)] = list(pool.decide([("a", raw, ctx)]))
    finally:
        pool.close()
    assert not isinstance(outcome, Exception) and outcome.action == "accepted"
    assert [s.form.form for s in outcome.submissions] == ["M1"]


def _counted_jobs(drawn: list[int]):  # noqa: ANN202
    """Twelve echo jobs; each key is appended to `drawn` when the job is drawn."""
    for n in range(12):
        drawn.append(n)
        yield n, b"x%d" % n, None


def test_jobs_are_drawn_only_when_a_worker_is_free():
    drawn: list[int] = []
    pool = Decider(2, 60, 0, inline=lambda: None, worker_fn=worker_funcs.slow_or_echo)
    ahead = []
    try:
        for n, (key, outcome) in enumerate(pool.decide(_counted_jobs(drawn)), start=1):
            assert outcome == b"X%d" % key
            ahead.append(len(drawn) - n)
    finally:
        pool.close()
    # Never more mails in hand than workers: a backlog is not loaded at once.
    assert len(drawn) == 12 and max(ahead) <= 1 and min(ahead) >= 0


def test_groups_gather_the_outcomes_ready_together_and_keep_every_worker_busy():
    drawn: list[int] = []
    pool = Decider(2, 60, 0, inline=lambda: None, worker_fn=worker_funcs.slow_or_echo)
    groups = []
    try:
        for group in pool.decide_groups(_counted_jobs(drawn), most=2):
            # A group is handed over only once every worker has its next mail and the one
            # after (queued in its pipe); two outcomes taken in one wait may leave one more
            # in hand for the next group.
            handed = sum(len(g) for g in groups) + len(group)
            assert min(12, handed + 4) <= len(drawn) <= min(12, handed + 4 + 1)
            groups.append(group)
    finally:
        pool.close()
    assert all(1 <= len(g) <= 2 for g in groups)
    assert sorted(k for g in groups for k, _ in g) == list(range(12))
    assert all(out == b"X%d" % k for g in groups for k, out in g)
    # Echoing is quick: the two workers' outcomes come back together, most of the time.
    assert len(groups) < 12


def test_busy_workers_get_no_next_mail_while_the_caller_says_not_to_queue():
    drawn: list[int] = []
    pool = Decider(2, 60, 0, inline=lambda: None, worker_fn=worker_funcs.slow_or_echo)
    groups = []
    try:
        for group in pool.decide_groups(_counted_jobs(drawn), most=2, may_queue=lambda: False):
            handed = sum(len(g) for g in groups) + len(group)
            assert min(12, handed + 2) <= len(drawn) <= min(12, handed + 2 + 1)
            groups.append(group)
    finally:
        pool.close()
    assert sorted(k for g in groups for k, _ in g) == list(range(12))


def test_a_mail_queued_behind_a_stuck_one_goes_to_another_worker_and_gets_its_own_time():
    pool = Decider(1, 2, 0, inline=lambda: None, worker_fn=worker_funcs.slow_or_echo)
    try:
        groups = list(pool.decide_groups([(1, b"slow", None), (2, b"b", None), (3, b"c", None)]))
    finally:
        pool.close()
    got = {k: out for g in groups for k, out in g}
    assert isinstance(got[1], DecisionTimeout)
    # Queued in the stuck worker's pipe, then handed to its replacement: decided, not timed out.
    assert got[2] == b"B" and got[3] == b"C"


def test_a_mail_queued_behind_one_that_kills_its_worker_is_decided_by_the_next():
    pool = Decider(1, 30, 0, inline=lambda: None, worker_fn=worker_funcs.killed)
    try:
        groups = list(pool.decide_groups([(1, b"die", None), (2, b"ab", None), (3, b"c", None)]))
    finally:
        pool.close()
    got = {k: out for g in groups for k, out in g}
    assert isinstance(got[1], WorkerDied)
    assert got[2] == 2 and got[3] == 1


def test_a_mail_too_large_to_queue_waits_for_a_free_worker(monkeypatch):
    monkeypatch.setattr("mailbot.workers._PIPE_BYTES", 4096)  # the pipe's smallest size
    big = b"x" * 8192
    drawn: list[int] = []

    def jobs():  # noqa: ANN202
        for key, raw in ((1, b"a"), (2, big), (3, b"c")):
            drawn.append(key)
            yield key, raw, None

    pool = Decider(1, 30, 0, inline=lambda: None, worker_fn=worker_funcs.slow_or_echo)
    try:
        groups = list(pool.decide_groups(jobs()))
    finally:
        pool.close()
    got = {k: out for g in groups for k, out in g}
    assert got == {1: b"A", 2: big.upper(), 3: b"C"}
    assert [k for g in groups for k, _ in g] == [1, 2, 3]  # still in order, none lost


def test_inline_groups_hold_one_outcome_each():
    groups = list(
        Decider(0, 0, 0, inline=lambda: worker_funcs.slow_or_echo).decide_groups(
            [(1, b"a", None), (2, b"b", None)]
        )
    )
    assert groups == [[(1, b"A")], [(2, b"B")]]


def test_started_workers_are_ready_before_the_first_mail_and_serve_it():
    pool = Decider(2, 60, 0, inline=lambda: None, worker_fn=worker_funcs.slow_or_echo)
    try:
        pool.start()
        started = {w.proc.pid for w in pool._idle}
        assert len(started) == 2 and all(w.proc.poll() is None for w in pool._idle)
        pool.start()  # already there: none more
        assert {w.proc.pid for w in pool._idle} == started
        out = dict(pool.decide([(1, b"a", None), (2, b"b", None)]))
        assert out == {1: b"A", 2: b"B"}
        assert {w.proc.pid for w in pool._idle} == started  # the same processes decided
    finally:
        pool.close()
    assert pool._idle == []


def test_a_pool_closed_while_its_zygote_still_imports_does_not_wait_for_it():
    pool = Decider(2, 60, 2048, inline=lambda: process_mail)
    pool.start()  # the zygote imports every reader (about a second) before its first fork
    zygote = pool._zygote
    assert zygote is not None and not zygote.ready()
    pool.close()  # a pass with nothing to decide
    assert zygote.proc.returncode == -signal.SIGKILL
    assert pool._idle == [] and pool._zygote is None


def test_an_inline_decider_starts_no_process():
    pool = Decider(0, 0, 0, inline=lambda: worker_funcs.slow_or_echo)
    pool.start()
    assert pool._idle == []


def _running(pid: int) -> bool:
    """Whether the process runs (a zombie left to whoever adopted it does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_are_forked_from_one_zygote_and_a_stuck_one_is_replaced(tmp_path):
    pool = Decider(2, 2, 0, inline=lambda: None, worker_fn=worker_funcs.whoami)
    stuck_file = tmp_path / "stuck.pid"
    try:
        pool.start()
        assert pool._zygote is not None
        zygote = pool._zygote.proc.pid
        # Forked once the zygote is ready: the 2 s limit then counts the mail alone.
        assert all(w.proc.poll() is None for w in pool._idle)
        first = dict(pool.decide([(1, b"a", None), (2, b"b", None)]))
        assert {parent for _, parent in first.values()} == {zygote}
        out = dict(pool.decide([(3, b"slow", str(stuck_file)), (4, b"c", None)]))
        assert isinstance(out[3], DecisionTimeout) and out[4][1] == zygote
        stuck = int(stuck_file.read_text())
        assert not Path(f"/proc/{stuck}").exists()  # killed, and reaped by the zygote
        after = dict(pool.decide([(5, b"d", None), (6, b"e", None)]))
        pids = {pid for pid, _ in after.values()}
        assert stuck not in pids and len(pids) == 2 and len(pool._idle) == 2
        assert {parent for _, parent in after.values()} == {zygote}  # the same zygote forked
    finally:
        pool.close()
    assert not Path(f"/proc/{zygote}").exists()


def test_a_dead_zygote_is_replaced_with_its_workers():
    pool = Decider(2, 30, 0, inline=lambda: None, worker_fn=worker_funcs.whoami)
    try:
        before = dict(pool.decide([(1, b"a", None), (2, b"b", None)]))
        assert pool._zygote is not None
        old = pool._zygote.proc.pid
        os.kill(old, signal.SIGKILL)  # the OOM killer's choice, say
        pool._zygote.proc.wait()
        after = dict(pool.decide([(3, b"c", None), (4, b"d", None)]))
    finally:
        pool.close()
    assert all(isinstance(o, tuple) for o in after.values())
    parents = {parent for _, parent in after.values()}
    assert old not in parents and len(parents) == 1
    for pid, _ in before.values():  # the old zygote's workers died with it
        assert not _running(pid)


def test_a_worker_is_sent_the_unchanging_context_once_and_again_when_it_changes():
    raw = (INTAKE / "gmail_khuong_trung.eml").read_bytes()
    full = context()
    empty = replace(full, register=Register([], district="Thanh Xuân"))
    later = replace(full, received_at=full.received_at + timedelta(minutes=1))
    pool = Decider(1, 60, 2048, inline=lambda: process_mail)
    sent = []
    try:
        pool.start()
        [worker] = pool._idle
        for ctx in (full, later, empty, full):  # what _start would send, one after another
            packed = pool._pack(ctx, worker)
            sent.append(packed.shared is not None)
            worker.shared_version = packed.version
        worker.shared_version = 0  # nothing was sent in fact
        out = dict(pool.decide([(k, raw, c) for k, c in enumerate((full, later, empty, full))]))
    finally:
        pool.close()
    assert sent == [True, False, True, True]  # the same parts are not sent twice in a row
    units = [None if isinstance(out[k], Exception) else out[k].unit for k in range(4)]
    assert units[0] is not None and units[1] == units[0] and units[3] == units[0]
    assert units[2] is None  # that mail was decided with the register it was given


def test_the_zygote_imports_every_reader_before_forking():
    # Each worker would otherwise import the readers' libraries (lxml, xlrd) on its first form.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mailbot.workers_zygote import _import_readers\n"
        "before = set(sys.modules)\n"
        "_import_readers()\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    for name in ("parsers.xlsx", "parsers.docx", "parsers.xls", "rules.total_mismatch", "xlrd"):
        assert name in out
    assert "openpyxl" not in out  # its package loads the whole workbook model (numpy, PIL)
    readers = {n for n in out if n.startswith("parsers.")}
    on_disk = {
        "parsers." + p.stem for p in (Path(__file__).parents[2] / "parsers").glob("*.py")
    } - {"parsers.__init__"}
    assert on_disk <= readers | {"parsers"}


def test_an_outcome_comes_back_without_the_mail_and_its_files() -> None:
    from mailbot.workers import _decide_in_worker

    raw = (INTAKE / "zip_of_forms.eml").read_bytes()
    ctx = context()
    whole = process_mail(raw, ctx)
    sent = _decide_in_worker(raw, ctx)
    assert whole.mail.raw == raw and sent.mail.raw == b""
    assert [a.content for a in whole.mail.attachments if a.content]  # the files were read
    assert all(a.content == b"" for a in sent.mail.attachments)
    fields = [(a.filename, a.content_type, a.origin, a.size) for a in whole.mail.attachments]
    assert [(a.filename, a.content_type, a.origin, a.size) for a in sent.mail.attachments] == fields
    assert all(a.size > 0 for a in sent.mail.attachments)  # the files' sizes stay told
    assert all(a.has_content for a in whole.mail.attachments)
    assert not any(a.has_content for a in sent.mail.attachments)
    # What the daemon records and sends is the same.
    assert sent.results == whole.results and sent.submissions == whole.submissions
    assert sent.reply is not None and whole.reply is not None
    assert sent.reply.to == whole.reply.to and sent.reply.subject == whole.reply.subject
