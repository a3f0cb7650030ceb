"""Deciding mail in worker processes: all cores busy, hostile files bounded in time and memory."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import is_dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mailbot.workers_zygote import SHARED_FIELDS, TEMPLATE_CACHE, Packed, Shared, Zygote

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from mailbot.config import Config
    from mailbot.decision import Tools

K = TypeVar("K")
Decide = Callable[[bytes, Any], Any]

# Never handed to a worker: a hostile file that takes a worker over finds no secret there.
_SECRET_NAMES = frozenset(
    {"CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_FDS"}
)
_STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL for a stuck worker
_POLL = 0.5  # seconds to wait for an outcome before delivering what is already decided
# Seconds a group of outcomes waits for those of the other workers: recording them together
# costs less than one by one, and a wait this short holds no receipt back.
_LINGER = 0.25
# A worker's inbound pipe is enlarged to this (Linux's default limit for a user) so that its
# next mail fits beside the current one: the send never waits for the worker.
_PIPE_BYTES = 1024 * 1024


def local_tools() -> Tools:
    """The converters this machine offers: LibreOffice and a RAR tool when installed."""
    from mailbot.decision import Tools
    from parsers.convert import soffice_converter

    return Tools(office=soffice_converter(), rar=rar_tool_available())


# The programs rarfile extracts with (its UNRAR_TOOL ... BSDTAR_TOOL defaults; a test
# keeps them equal). Looked for before importing rarfile: with none installed, as on most
# machines, the daemon's start does not pay for rarfile and the cryptography it loads.
RAR_TOOLS = ("unrar", "unar", "7z", "7zz", "bsdtar")


def rar_tool_available() -> bool:
    """Whether this machine has a tool rarfile can extract with (probed once, by the shell:
    the unpackers themselves live in the workers)."""
    # rarfile runs each candidate to see whether it works; none on PATH needs no run.
    if not any(shutil.which(name) for name in RAR_TOOLS):
        return False
    try:
        import rarfile

        rarfile.tool_setup()
    except Exception:  # noqa: BLE001 - any failure means no usable tool
        return False
    return True


class DecisionTimeout(Exception):
    """A mail took longer than the time limit to decide; its worker was stopped."""


class WorkerDied(Exception):
    """The worker deciding a mail died (killed for memory, or crashed)."""


def worker_environment(
    environ: Mapping[str, str], secret_names: Iterable[str | None] = ()
) -> dict[str, str]:
    """The environment a worker gets: no password variables, credentials or systemd sockets."""
    drop = set(_SECRET_NAMES) | {n for n in secret_names if n}
    return {
        k: v
        for k, v in environ.items()
        if k not in drop and "PASSWORD" not in k.upper() and "SECRET" not in k.upper()
    }


def _decide_in_worker(raw: bytes, ctx: Any) -> Any:
    from mailbot.intake import process_mail

    outcome = process_mail(raw, ctx)
    # The daemon holds the raw mail it handed out, and reads what was found in the files,
    # never the files again: neither comes back through the pipe (half of an outcome's bytes).
    files = tuple(a.without_content() for a in outcome.mail.attachments)
    return replace(outcome, mail=replace(outcome.mail, raw=b"", attachments=files))


class _Worker:
    """One worker process and its two pipes; decides one mail at a time, and may hold the
    next one in its pipe (`queued`)."""

    def __init__(self, zygote: Zygote) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            self.pipe_bytes = fcntl.fcntl(to_child_w, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:  # over the system's limit: the default size
            self.pipe_bytes = fcntl.fcntl(to_child_w, fcntl.F_GETPIPE_SZ)
        try:
            self.zygote = zygote
            self.proc = zygote.fork(to_child_r, from_child_w)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.send_conn = Connection(to_child_w, readable=False)
        self.recv_conn = Connection(from_child_r, writable=False)
        self.job: tuple[Any, float] | None = None  # (key, deadline)
        self.job_bytes = 0  # the size of the current job as sent
        # The next job, sent but not started: (key, raw, ctx), handed back if this one dies.
        self.queued: tuple[Any, bytes, Any] | None = None
        self.shared_version = 0  # the version of the context's shared parts it holds

    def stop(self, grace: float = _STOP_GRACE) -> bool:
        """SIGTERM (the worker unwinds its conversions), then SIGKILL; remove its leftovers.

        False when some of its temporary directories could not be removed yet.
        """
        from parsers.convert import remove_temp_dirs

        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait()
        self.close_pipes()
        return remove_temp_dirs(self.proc.pid) == 0  # what a SIGKILL left no time to remove

    def close_pipes(self) -> None:
        for conn in (self.send_conn, self.recv_conn):
            with contextlib.suppress(OSError):
                conn.close()


class Decider:
    """Runs the pure `process_mail` for a batch; inline when `workers` is 0.

    Inline mode calls `inline` (looked up by the caller at call time), which keeps
    single-process runs and tests simple; worker mode keeps `workers` processes alive as
    long as the Decider, each deciding one mail at a time under a time and memory limit.
    Outcomes are yielded as they complete; a mail over its time stops only its own worker.
    """

    def __init__(
        self,
        workers: int,
        timeout: float,
        memory_mb: int,
        inline: Callable[[], Decide],
        worker_fn: Decide = _decide_in_worker,
        secret_env: Iterable[str | None] = (),
        template_cache: Path | None = None,
    ) -> None:
        self.workers = max(0, workers)
        self._template_cache = template_cache
        self._worker_fn = worker_fn  # a module-level function: workers import it by name
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._inline = inline
        self._secret_env = tuple(n for n in secret_env if n)
        self._idle: list[_Worker] = []
        self._zygote: Zygote | None = None  # forks the workers; started with the first one
        # The context's parts that stay the same from mail to mail, pickled once per version.
        self._shared: Shared | None = None
        self._leftovers: set[int] = set()  # stopped workers whose temp dirs remain

    def _stopped(self, worker: _Worker, grace: float = _STOP_GRACE) -> None:
        if not worker.stop(grace):
            self._leftovers.add(worker.proc.pid)

    def _sweep(self) -> None:
        """Remove temporary directories a stopped worker's dying converter still held."""
        from parsers.convert import remove_temp_dirs

        self._leftovers = {pid for pid in self._leftovers if remove_temp_dirs(pid)}

    def _new_worker(self) -> _Worker:
        if self._zygote is None or not self._zygote.alive():
            if self._zygote is not None:
                log.warning(
                    "the worker zygote died (exit %s): starting another", self._zygote.proc.poll()
                )
                self._zygote.close(0)
            env = worker_environment(os.environ, self._secret_env)
            fn = self._worker_fn
            self._zygote = Zygote(
                self.memory_mb, env, f"{fn.__module__}:{fn.__qualname__}", self._template_cache
            )
        return _Worker(self._zygote)

    def decide(
        self,
        jobs: Iterable[tuple[K, bytes, Any]],
        on_wait: Callable[[], None] | None = None,
    ) -> Iterator[tuple[K, Any]]:
        """Yield (key, outcome or the exception it raised) as each mail is decided.

        `jobs` is drawn lazily, one when a worker is free: a job built at that moment sees
        what the outcomes yielded before it changed, and only the mails being decided are
        held in memory. `on_wait` is called when outcomes were taken and the rest are still
        being decided (the caller delivers the answers already queued instead of waiting).
        """
        for group in self._groups(iter(jobs), on_wait, most=1, draw_first=False):
            yield from group

    def decide_groups(
        self,
        jobs: Iterable[tuple[K, bytes, Any]],
        on_wait: Callable[[], None] | None = None,
        most: int = 50,
        may_queue: Callable[[], bool] | None = None,
    ) -> Iterator[list[tuple[K, Any]]]:
        """Like `decide`, but yield together (at most `most`) the outcomes that are ready
        when the caller would otherwise wait, so it records them in one transaction.

        Free workers are handed their next mail before a group is yielded (none idles
        while the caller records), and busy ones the mail after while `may_queue` says so
        (default: always); a job drawn then has not seen the group's outcomes.
        Inline (no workers), each outcome is its own group.
        """
        yield from self._groups(
            iter(jobs), on_wait, most=max(1, most), draw_first=True, may_queue=may_queue
        )

    def _groups(
        self,
        pending: Iterator[tuple[K, bytes, Any]],
        on_wait: Callable[[], None] | None,
        *,
        most: int,
        draw_first: bool,
        may_queue: Callable[[], bool] | None = None,
    ) -> Iterator[list[tuple[K, Any]]]:
        if self.workers == 0:
            decide = self._inline()
            for key, raw, ctx in pending:
                try:
                    yield [(key, decide(raw, ctx))]
                except Exception as exc:  # noqa: BLE001 - reported per mail by the caller
                    yield [(key, exc)]
            return
        yield from self._decide_pool(pending, on_wait, most, draw_first, may_queue)

    def _pack(self, ctx: Any, worker: _Worker) -> Any:
        """The context as the worker gets it: the parts it already has are left out.

        Only for `_decide_in_worker` (other worker functions get their context unchanged).
        """
        if self._worker_fn is not _decide_in_worker or not is_dataclass(ctx):
            return ctx
        if isinstance(ctx, type) or not all(hasattr(ctx, n) for n in SHARED_FIELDS):
            return ctx
        if self._shared is None or not self._shared.holds(ctx):
            version = 1 if self._shared is None else self._shared.version + 1
            self._shared = Shared.of(ctx, version)
        shared = self._shared
        rest = replace(ctx, **dict.fromkeys(SHARED_FIELDS))
        if worker.shared_version == shared.version:
            return Packed(rest, shared.version, None)
        return Packed(rest, shared.version, shared.blob)

    def _start(self, worker: _Worker | None, key: Any, raw: bytes, ctx: Any) -> _Worker | None:
        """Hand one mail to a worker (a fresh one if the given one is gone); None: failed."""
        for _attempt in (1, 2):
            # A dead zygote's workers die with it: none of them is worth a mail.
            if worker is None or not worker.zygote.alive() or worker.proc.poll() is not None:
                if worker is not None:
                    self._stopped(worker, 0)
                worker = self._new_worker()
            packed = self._pack(ctx, worker)
            buf = ForkingPickler.dumps((raw, packed))
            try:
                worker.send_conn.send_bytes(buf)
            except (OSError, EOFError):
                self._stopped(worker, 0)
                worker = None
                continue
            if isinstance(packed, Packed):
                worker.shared_version = packed.version
            worker.job = (key, time.monotonic() + self.timeout)
            worker.job_bytes = len(buf)
            return worker
        return None

    def _queue(self, worker: _Worker, key: Any, raw: bytes, ctx: Any) -> bool:
        """Send a busy worker its next mail, to start as soon as it is done with this one
        (it does not wait for this process to hand it over); False when it does not fit
        in the pipe beside the current one (it then waits for a free worker)."""
        packed = self._pack(ctx, worker)
        buf = ForkingPickler.dumps((raw, packed))
        if worker.job_bytes + len(buf) > worker.pipe_bytes:
            return False
        try:
            worker.send_conn.send_bytes(buf)
        except (OSError, EOFError):
            return False  # it died: its current job's outcome says so
        if isinstance(packed, Packed):
            worker.shared_version = packed.version
        worker.queued = (key, raw, ctx)
        worker.job_bytes = len(buf)
        return True

    def _decide_pool(
        self,
        pending: Iterator[tuple[K, bytes, Any]],
        on_wait: Callable[[], None] | None,
        most: int,
        draw_first: bool,
        may_queue: Callable[[], bool] | None = None,
    ) -> Iterator[list[tuple[K, Any]]]:
        """Outcomes in groups of at most `most`: with `draw_first`, as many as are ready
        when waiting would begin, free workers given their next mail first and busy ones
        the mail after (queued in their pipe: a worker done with one starts the next without
        waiting for this process, busy recording); else each group as soon as it is taken,
        the next mails drawn once the groups are consumed."""
        self._sweep()
        running: dict[Connection, _Worker] = {}
        done: list[tuple[K, Any]] = []  # taken from the workers, not yielded yet
        fresh = False  # outcomes taken since on_wait last ran
        more = True  # jobs may remain
        first_done: float | None = None  # when the oldest outcome in `done` was taken
        # Drawn but not started: queued jobs of a worker that died or was stopped, and a
        # job too large to queue; each goes to the next free worker, before `pending`.
        back: list[tuple[K, bytes, Any]] = []

        def draw() -> tuple[K, bytes, Any] | None:
            return back.pop(0) if back else next(pending, None)

        try:
            while more or running or done or back:
                while (draw_first or not done) and (more or back) and len(running) < self.workers:
                    job = draw()
                    if job is None:
                        more = False
                        break
                    key, raw, ctx = job
                    idle = self._idle.pop() if self._idle else None
                    worker = self._start(idle, key, raw, ctx)
                    if worker is None:
                        done.append((key, WorkerDied("no worker process could be started")))
                        continue
                    running[worker.recv_conn] = worker
                # Busy workers get their next mail too, unless one that did not fit waits.
                while draw_first and more and not back:
                    worker = next((w for w in running.values() if w.queued is None), None)
                    if worker is None or (may_queue is not None and not may_queue()):
                        break
                    job = draw()
                    if job is None:
                        more = False
                        break
                    if not self._queue(worker, *job):
                        back.append(job)
                if done and (not draw_first or len(done) >= most or not running):
                    group, done = done[:most], done[most:]
                    fresh = True
                    yield group
                    continue
                if not running:
                    continue
                now = time.monotonic()
                deadline = min(w.job[1] for w in running.values() if w.job)
                if done:
                    # With outcomes in hand, wait only a moment for the other workers' (a
                    # group of one outcome per worker), never for a slow mail.
                    if first_done is None:
                        first_done = now
                    timeout = max(0.0, first_done + _LINGER - now)
                    if len(done) >= min(most, self.workers):
                        timeout = 0.0
                else:
                    first_done = None
                    timeout = max(0.0, min(deadline - now, _POLL))
                ready = wait(list(running), timeout=timeout)
                if not ready and done:
                    group, done = done[:most], done[most:]
                    fresh = True
                    yield group
                    continue
                if not ready and fresh and on_wait is not None:
                    fresh = False
                    on_wait()
                for conn in ready:
                    worker = running.pop(conn)  # type: ignore[call-overload]
                    assert worker.job is not None
                    key = worker.job[0]
                    worker.job = None
                    try:
                        status, value = worker.recv_conn.recv()
                    except (EOFError, OSError):
                        code = worker.proc.wait()
                        log.warning("the worker deciding mail %s died (exit %s)", key, code)
                        self._stopped(worker, 0)
                        done.append((key, WorkerDied(f"worker exit {code}")))
                        _hand_back(worker, back)
                    else:
                        done.append((key, value))
                        if worker.queued is None:
                            self._idle.append(worker)
                        else:  # it has started its next mail: that mail's time runs now
                            worker.job = (worker.queued[0], time.monotonic() + self.timeout)
                            worker.queued = None
                            running[worker.recv_conn] = worker
                now = time.monotonic()
                for conn, worker in list(running.items()):
                    if worker.job is not None and worker.job[1] <= now:
                        key = worker.job[0]
                        log.warning(
                            "deciding mail %s took over %.0fs: its worker stopped",
                            key,
                            self.timeout,
                        )
                        del running[conn]
                        self._stopped(worker)
                        done.append(
                            (key, DecisionTimeout(f"no decision within {self.timeout:.0f}s"))
                        )
                        _hand_back(worker, back)
        finally:
            # Abandoned part-way (the caller stopped iterating): nothing may keep running.
            for worker in running.values():
                self._stopped(worker, 0)
            self._sweep()

    def start(self) -> None:
        """Start the workers now rather than at the first mail: they import the parsers and
        compile the answer templates while the daemon connects and fetches."""
        while len(self._idle) < self.workers:
            self._idle.append(self._new_worker())

    def close(self) -> None:
        """Stop the idle workers (they finish nothing: no mail is in hand between batches)."""
        if self._zygote is not None and not self._zygote.ready():
            # Still importing (a pass with nothing to decide): it has forked no worker and
            # holds nothing, so it is not waited for. Its workers-to-be are then gone at once.
            self._zygote.kill()
        idle, self._idle = self._idle, []
        for worker in idle:  # all told first: they end side by side
            with contextlib.suppress(OSError, ValueError):
                worker.send_conn.send(None)
        for worker in idle:
            try:
                worker.proc.wait(5)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
            worker.close_pipes()
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None
        for _attempt in range(20):
            self._sweep()
            if not self._leftovers:
                break
            time.sleep(0.1)


def _hand_back(worker: _Worker, back: list[Any]) -> None:
    """The mail a stopped or dead worker held queued goes to another one, first."""
    if worker.queued is not None:
        back.insert(0, worker.queued)
        worker.queued = None


def inline_process_mail() -> Decide:
    """`process_mail`, imported when a mail is first decided in this process (no workers)."""
    from mailbot.intake import process_mail

    return process_mail


def configured_decider(config: Config) -> Decider:
    """The worker pool `[processing]` asks for; workers get none of the secrets."""
    p = config.processing
    return Decider(
        p.workers,
        p.timeout_seconds,
        p.worker_memory_mb,
        inline=inline_process_mail,
        # Workers get no secrets: these variables are left out of their environment.
        secret_env=(
            config.inbox.password.env,
            config.outgoing.password.env,
            *config.secret_env_names,  # the other mailboxes' passwords too
            config.storage.password.env,
        ),
        template_cache=config.data_dir / TEMPLATE_CACHE,
    )
