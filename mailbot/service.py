"""The I/O shell around the pure intake: mailbox to raw store and database, outbox to SMTP."""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mailbot import db as dbm
from mailbot import outbox
from mailbot.claims import releasable
from mailbot.clock import Clock, utc_now
from mailbot.config import Config
from mailbot.contact import contact_of
from mailbot.decision import IntakeContext
from mailbot.fetching import FetchStage
from mailbot.finishing import FinishStage
from mailbot.overlap import Overlap
from mailbot.recording import Item, RecordStage, Round, load_register, merged, prior_versions
from mailbot.sources import Source
from mailbot.staff.access import load_access
from mailbot.store import RawStore
from mailbot.transport import DeliveryError, Sender
from mailbot.units import Register
from mailbot.workers import (
    Decider,
    DecisionTimeout,
    WorkerDied,
    inline_process_mail,
    local_tools,
)
from rules.campaign import Campaign

log = logging.getLogger(__name__)

# A batch is decided in at most this many rounds (see mailbot.recording.Round).
_ROUNDS = 3
# While deciding: how long to wait for the next recorded batch.
_FETCH_WAIT_SECONDS = 0.05
# The interpreter's switch interval while a pass's threads overlap (the default is 5 ms).
_SWITCH_SECONDS = 0.001
# Mails claimed and decided together, in fetch batches: each page ends waiting for its last
# mail, and the next one's claims and context are read while the workers have nothing to do.
_PAGE_BATCHES = 4


def _no_stage_hook(stage: str) -> None:
    """The default stage hook: nothing to do between stages."""


def _sender_key(address: str | None) -> str | None:
    """A sender as both `_SenderOrder` and `_SenderTurns` compare them; None: unknown."""
    return address.strip().lower() if address else None


class _SenderOrder:
    """Mailbox order among the mails of one sender, whatever order workers finish in.

    An outcome waits while an earlier mail from the same address is still being decided:
    a correction sent after a first version is recorded after it, so its receipt says what
    it replaces. Mail of other senders is recorded as soon as it is ready.
    """

    def __init__(self, senders: dict[int, str | None]) -> None:
        self._senders = {m: _sender_key(a) for m, a in senders.items()}
        self._open = set(senders)  # neither recorded, deferred nor failed yet
        self._waiting: list[Item] = []

    def due(self, ready: list[Item]) -> list[Item]:
        """Of the outcomes just ready and those waiting, the ones to record now, in mailbox
        order; the others keep waiting."""
        candidates = sorted(self._waiting + ready, key=lambda item: item[0])
        at_hand = {mail_id for mail_id, _, _ in candidates}
        blocked = {m for m in self._open - at_hand if self._senders.get(m)}
        now: list[Item] = []
        self._waiting = []
        for item in candidates:
            sender = self._senders.get(item[0])
            if sender and any(m < item[0] and self._senders[m] == sender for m in blocked):
                self._waiting.append(item)
                blocked.add(item[0])
            else:
                now.append(item)
        return now

    def settled(self, mail_ids: set[int]) -> None:
        """These mails are recorded, deferred to the next round or failed."""
        self._open -= mail_ids


class _SenderTurns:
    """Which mail a worker gets next: the first whose sender has no earlier mail that is
    still unrecorded.

    A mail decided before an earlier one of its sender is recorded is decided against the
    versions on file before that one, is stale when its turn to be recorded comes, and is
    decided again in the next round with every later mail of its unit (see `Round`).
    Another sender's mail is handed out first instead, or one whose earlier mails are all
    decided and only held for recording (they are then recorded first); when every mail
    left waits for one still being decided, a free worker gets the first of them anyway
    (no worker idles for this) but a busy one gets none (`ready`).
    """

    def __init__(self, items: list[tuple[int, str, datetime, str | None]]) -> None:
        self._left = list(items)  # not handed out yet, in mailbox order
        self._open: dict[str, list[int]] = {}  # sender -> its mails not yet recorded
        for mail_id, _, _, sender in items:
            if key := _sender_key(sender):
                self._open.setdefault(key, []).append(mail_id)

    def _earlier(self, mail_id: int, key: str | None) -> list[int]:
        """The sender's earlier mails not yet recorded (`key`: the sender's `_sender_key`)."""
        ids = self._open.get(key, []) if key else []
        return ids[: ids.index(mail_id)] if mail_id in ids else []

    def _choice(self, held: set[int]) -> tuple[int, bool] | None:
        """The index in `_left` of the mail to hand out and whether `held` is recorded
        first; None when every mail left waits for one still being decided."""
        flush: int | None = None
        # A sender's later mails wait for its first one left (not handed out, so not held):
        # only each sender's first mail left is looked at, however long the page.
        looked: set[str] = set()
        for n, (mail_id, _, _, sender) in enumerate(self._left):
            key = _sender_key(sender)
            if key in looked:
                continue
            earlier = self._earlier(mail_id, key)
            if not earlier:
                return n, False
            if key is not None:
                looked.add(key)
            if flush is None and all(m in held for m in earlier):
                flush = n
        return None if flush is None else (flush, True)

    def next(self, held: set[int]) -> tuple[tuple[int, str, datetime, str | None], bool] | None:
        """The mail to hand out now (taken off the list) and whether the outcomes `held`
        must be recorded before it; None when none is left."""
        if not self._left:
            return None
        n, flush = self._choice(held) or (0, False)
        return self._left.pop(n), flush

    def ready(self, held: list[Item]) -> bool:
        """Whether `next` would hand out a mail that waits for none still being decided
        (a busy worker is given its next mail only then: one that would be decided again
        is better left until a worker is free)."""
        return not self._left or self._choice({mail_id for mail_id, _, _ in held}) is not None

    def recorded(self, mail_ids: Iterable[int]) -> None:
        """These mails are recorded, deferred to the next round or failed."""
        done = set(mail_ids)
        for sender, ids in list(self._open.items()):
            if any(m in done for m in ids):
                self._open[sender] = [m for m in ids if m not in done]


def _runs(items: list[Item]) -> Iterator[list[Item]]:
    """The items in recording order, split so that each staff command is a run of its own
    (what it reads and changes is then what the database holds)."""
    run: list[Item] = []
    for item in items:
        if item[1].command is None:
            run.append(item)
            continue
        if run:
            yield run
            run = []
        yield [item]
    if run:
        yield run


@dataclass
class PassStats:
    """What one pass over the inbox did, for logs and the terminal."""

    fetched: int = 0
    processed: int = 0
    failed: int = 0
    sent: int = 0
    send_failed: int = 0

    def __str__(self) -> str:
        return (
            f"fetched={self.fetched} processed={self.processed} failed={self.failed} "
            f"sent={self.sent} send_failed={self.send_failed}"
        )

    def said(self) -> str:
        """The same figures for the person at the terminal."""
        return (
            f"nhận {self.fetched} thư, xử lý {self.processed} (lỗi {self.failed}), "
            f"gửi {self.sent} thư (lỗi {self.send_failed})"
        )


class Robot(RecordStage, FetchStage, FinishStage):
    """Moves mail through the stages; each stage commits before the next one starts."""

    def __init__(
        self,
        config: Config,
        database: dbm.Database,
        store: RawStore,
        source: Source,
        sender: Sender,
        campaign: Campaign,
        clock: Clock = utc_now,
        progress: Callable[[str], None] | None = None,
        decider: Decider | None = None,
        on_stage: Callable[[str], None] | None = None,
        sender_state: outbox.SenderState | None = None,
    ) -> None:
        """`on_stage` is called with "after-record" each time a fetched batch is recorded,
        "after-process" and "after-send" each time a mail's stage has committed (the crash
        tests kill the process there)."""
        self.config = config
        # Without a pool of workers, decide here; the lambda keeps process_mail patchable.
        self.decider = decider or Decider(0, 0, 0, inline=inline_process_mail)
        self.tools = local_tools()  # what this machine can convert and unpack, probed once
        self.db = database
        self.store = store
        self.source = source
        self.sender = sender
        self.campaign = campaign
        self.clock = clock
        self.progress = progress
        self._started = clock()
        self._orphans_released = False
        self.on_stage = on_stage or _no_stage_hook
        self._sent_meanwhile = [0, 0]  # (sent, failed) by deliveries during process_due
        self._overlap: Overlap | None = None  # during run_once
        # One per process (the App's): whose claims these are, and what SMTP accepted.
        self.sender_state = sender_state or outbox.SenderState()
        self.claimant = self.sender_state.claimant
        self._disk_low = False
        self._last_checkpoint: datetime | None = None
        # Hears each delivery attempt's outcome (the daemon's operator alerts).
        self.on_delivery: Callable[[DeliveryError | None], None] | None = None
        # Who may act by mail, and the key that checks their codes (read once).
        self.staff, key_problem = load_access(config)
        if key_problem is not None:
            # No key at all: the feature is simply off; a broken key is a mistake to fix.
            level = logging.INFO if key_problem.missing else logging.WARNING
            log.log(level, "staff commands by mail are refused: %s", key_problem)

    # -- stage 2: decide (recording: mailbot.recording) --------------------------------------

    def _context(
        self, s: dbm.Session, received_at: datetime, register: Register | None = None
    ) -> IntakeContext:
        if register is None:
            register = load_register(s, self.config.district)
        # Which required forms each unit has a valid, confirmed version of: one query, not
        # one per unit and form (that made the context cost more than parsing the mail).
        on_file = dbm.forms_on_file(s, self.campaign.form_codes)
        versions = prior_versions(dbm.counting_versions(s))
        out = self.config.outgoing
        return IntakeContext(
            campaign=self.campaign,
            register=register,
            received_at=received_at,
            from_address=out.from_address,
            from_name=out.from_name,
            message_id_domain=out.message_id_domain,
            contact=contact_of(self.config, self.campaign),
            own_addresses=(out.from_address, *self.config.security.own_addresses),
            trusted_authserv_id=self.config.security.trusted_authserv_id,
            max_attachment_bytes=self.config.security.max_attachment_bytes,
            forms_on_file=on_file,
            forms_not_counted=dbm.forms_not_counted(s, self.campaign.form_codes),
            versions_on_file=versions,
            tools=self.tools,
            staff=self.staff,
        )

    def release_orphaned_mails(self) -> list[int]:
        """Give back the mail claims of daemons that are gone (see mailbot.claims)."""
        now = self.clock()
        timeout = max(
            outbox.CLAIM_TIMEOUT,
            timedelta(
                seconds=self.config.processing.timeout_seconds
                * max(1, self.config.inbox.batch_size)
                * _PAGE_BATCHES
            ),
        )
        with self.db.session() as s:
            claims = dbm.mail_claims(s)
            gone = dbm.gone_claimants(s, (by for _, by, _ in claims))
            ids = releasable(claims, self.claimant, now, timeout, gone=gone)
            released = dbm.release_mail_claims(s, ids) if ids else []
        if released:
            log.warning(
                "mails %s were being decided by a process that died: queued again", released
            )
        return released

    def process_due(self, fetching: threading.Event | None = None) -> tuple[int, int]:
        """Decide every mail that is due, a page at a time; one failing mail never blocks
        the others. While `fetching` is not set, mail still being recorded is waited for.

        Each page is claimed first (received/retry -> processing, with this process as the
        holder): a mail another daemon claimed is left to it, so none is decided twice.
        """
        self.release_orphaned_mails()
        done = failed = 0
        batch = max(1, self.config.inbox.batch_size) * _PAGE_BATCHES
        after = 0  # pages follow the ids: each mail is looked at once per pass
        register: Register | None = None
        while True:
            # Read before the query: a batch recorded before fetching ended is then seen.
            ended = fetching is None or fetching.is_set()
            with self.db.session(write=False) as s:
                page = [
                    (m.id, m.raw_path, m.received_at, m.from_addr)
                    for m in dbm.due_mails(s, self.clock(), batch, after_id=after)
                ]
                # Processing only adds unconfirmed addresses, which the register leaves out.
                if page and register is None:
                    register = load_register(s, self.config.district)
            if not page:
                if ended:
                    return done, failed
                assert fetching is not None
                if register is None:  # read while the first batch is being recorded
                    with self.db.session(write=False) as s:
                        register = load_register(s, self.config.district)
                fetching.wait(_FETCH_WAIT_SECONDS)  # the next batch is being recorded
                continue
            after = page[-1][0]
            with self.db.session() as s:
                won = set(
                    dbm.claim_mails(s, [m for m, *_ in page], self.claimant.token, self.clock())
                )
            chunk = [item for item in page if item[0] in won]
            if not chunk:
                continue
            try:
                d, f = self._decide_batch(chunk, register, done + failed)
            finally:
                # Whatever this batch did not settle (a stop request, a crash of the
                # database) goes back to the queue at once rather than wait for a timeout.
                with self.db.session() as s:
                    dbm.release_mail_claims(s, won, holder=self.claimant.token)
            done += d
            failed += f

    def _decide_batch(
        self,
        chunk: list[tuple[int, str, datetime, str | None]],
        register: Register | None,
        so_far: int,
    ) -> tuple[int, int]:
        counts = [0, 0]  # done, failed
        # One context (forms on file) and one look-up of staff assignments serve the batch;
        # the versions on file are kept current as outcomes are recorded, and each mail is
        # handed to a worker with them as they are then (see `jobs`).
        try:
            with self.db.session(write=False) as s:
                base = self._context(s, chunk[0][2], register)
                assigned_units = dbm.assigned_units(s, [mail_id for mail_id, *_ in chunk])
        except Exception as exc:  # noqa: BLE001 - each mail counts one failed attempt
            for mail_id, *_ in chunk:
                self._failed(mail_id, exc)
            return 0, len(chunk)
        # Read by `jobs` when each mail is drawn (a closure sees the current binding).
        versions, on_file = base.versions_on_file, base.forms_on_file
        held_jobs: dict[int, tuple[bytes, IntakeContext]] = {}
        pending, rnd, rounds = chunk, Round(), 0

        def jobs() -> Iterator[tuple[int, bytes, IntakeContext]]:
            # Drawn one at a time, when a worker is free: only mails in hand are in memory.
            while (turn := turns.next({mail_id for mail_id, _, _ in held})) is not None:
                (mail_id, raw_path, received_at, _), flush = turn
                if flush:
                    record_held()  # its sender's earlier mails: their versions first
                try:
                    raw = self.store.get(raw_path)
                    ctx = replace(
                        base,
                        received_at=received_at,
                        assigned_unit=assigned_units.get(mail_id),
                        versions_on_file=versions,
                        forms_on_file=on_file,
                    )
                except Exception as exc:  # noqa: BLE001 - a damaged store entry, say
                    counts[1] += 1
                    self._failed(mail_id, exc)
                    order.settled({mail_id})
                    turns.recorded({mail_id})
                    continue
                held_jobs[mail_id] = (raw, ctx)
                yield mail_id, raw, ctx

        # Outcomes due are held until a few are at hand (two groups of the pool's), then
        # recorded in one transaction: a group's statements and commit cost most of its
        # recording, whatever its size. Held ones are recorded at once when deciding would
        # wait for a slow mail (`waiting`) and when the round ends.
        hold = max(1, 2 * self.decider.workers)
        held: list[Item] = []

        def record_held() -> None:
            nonlocal versions, on_file
            items = held[:]
            held.clear()
            for run in _runs(items):
                failures, changed = self._record_group(run, rnd)
                if changed:
                    versions, on_file = merged(versions, on_file, *changed)
                for mail_id, _, _ in run:
                    if mail_id in failures:
                        self._failed(mail_id, failures[mail_id])
                    if mail_id not in rnd.redo:
                        self._decided(counts, so_far, failed=mail_id in failures)
                turns.recorded(mail_id for mail_id, _, _ in run)

        def waiting() -> None:
            if held:
                record_held()
            self._while_waiting()

        while pending:
            # Outcomes are recorded a few groups at a time: those ready together, in one
            # transaction (a command alone). While a slow mail is still being decided, the
            # answers already queued go out (a slow mail delays no one else's receipt).
            order = _SenderOrder({m: sender for m, _, _, sender in pending})
            turns = _SenderTurns(pending)
            groups = self.decider.decide_groups(
                jobs(),
                on_wait=waiting,
                most=max(1, self.config.inbox.batch_size),
                may_queue=functools.partial(turns.ready, held),
            )
            for group in groups:
                ready: list[Item] = []
                for mail_id, outcome in group:
                    job = held_jobs.pop(mail_id, None)
                    try:
                        if isinstance(outcome, (DecisionTimeout, WorkerDied, MemoryError)):
                            # Out of time or memory once: answered as too large or too
                            # complex, never retried (each retry would stall the queue again).
                            log.warning("mail id=%s: %s; answering too-complex", mail_id, outcome)
                            assert job is not None
                            from mailbot.intake import too_complex_outcome

                            outcome = too_complex_outcome(*job)
                        if isinstance(outcome, BaseException):
                            raise outcome
                    except Exception as exc:  # noqa: BLE001 - one bad mail must not stop the queue
                        self._failed(mail_id, exc)
                        self._decided(counts, so_far, failed=True)
                        order.settled({mail_id})
                        turns.recorded({mail_id})
                        continue
                    ready.append((mail_id, outcome, job))
                # In mailbox order per sender: what waited for a mail now held follows it.
                while ready := order.due(ready):
                    held.extend(ready)
                    order.settled({mail_id for mail_id, _, _ in ready})
                    ready = []
                if len(held) >= hold or any(item[1].command is not None for item in held):
                    record_held()
            record_held()
            # Mails found stale go back to the pool, with the versions now on file. Each
            # round records at least its first mail; the last one defers none.
            again = set(rnd.redo)
            pending = [item for item in pending if item[0] in again]
            rounds += 1
            rnd = Round(last=rounds >= _ROUNDS - 1)
        return counts[0], counts[1]

    def _decided(self, counts: list[int], so_far: int, *, failed: bool) -> None:
        """One more mail's stage has committed (or failed): count it, tell who listens."""
        counts[1 if failed else 0] += 1
        if self._overlap is not None:
            self._overlap.decided()
        if self.progress:
            self.progress(f"đã xử lý {so_far + counts[0] + counts[1]} thư")
        self.on_stage("after-process")

    def _while_waiting(self) -> None:
        """Deciding waits for a slow mail: have what is decided moved and answered now."""
        if self._overlap is not None:
            self._overlap.nudge()
        else:
            self._deliver_meanwhile()

    def _deliver_meanwhile(self) -> None:
        """Send the answers queued so far while the decision of other mail goes on."""
        try:
            sent, failed = self.deliver()
        except Exception as exc:  # noqa: BLE001 - the pass's own delivery retries later
            log.warning("delivering during processing failed: %s", exc)
            return
        self._sent_meanwhile[0] += sent
        self._sent_meanwhile[1] += failed

    def _failed(self, mail_id: int, exc: BaseException) -> None:
        """Count a failed attempt: retried with back-off, quarantined after the last one."""
        log.error(
            "processing mail id=%s failed: %s: %s", mail_id, type(exc).__name__, exc, exc_info=exc
        )
        with self.db.session() as s:
            mail = dbm.get_mail(s, mail_id)
            if mail is not None and dbm.holds_claim(mail, self.claimant.token):
                dbm.mark_failed(
                    s,
                    mail,
                    f"{type(exc).__name__}: {exc}",
                    self.clock(),
                    self.config.processing.max_attempts,
                    self.config.processing.retry_base_seconds,
                )

    def run_once(self) -> PassStats:
        """One full pass: fetch, decide, move, deliver, the stages overlapping.

        The mailbox thread fetches and records batch after batch, then moves decided mail;
        the delivery thread sends the answers from the first one decided; this thread decides
        what is recorded: each mail is still recorded before it is decided, decided before
        it is moved or answered.
        """
        stats = PassStats()
        self._sent_meanwhile = [0, 0]
        io = Overlap(self, fetch=self.room_for_intake())
        # The delivery and mailbox threads wait on sockets and SQLite a dozen times a mail,
        # each time taking the interpreter back from this busy thread: at the default 5 ms a
        # take, sending fell behind deciding (measured: ~250 receipts of 2,000 left at the end).
        switch = sys.getswitchinterval()
        sys.setswitchinterval(_SWITCH_SECONDS)
        io.start()
        self._overlap = io
        try:
            stats.processed, stats.failed = self.process_due(fetching=io.fetched)
        finally:
            self._overlap = None
            io.finish()
            sys.setswitchinterval(switch)
        stats.fetched = io.mailbox.count
        if io.mailbox.error is not None:
            raise io.mailbox.error
        self.move_done()
        stats.sent, stats.send_failed = self.deliver()
        stats.sent += self._sent_meanwhile[0]
        stats.send_failed += self._sent_meanwhile[1]
        self.checkpoint()
        return stats
