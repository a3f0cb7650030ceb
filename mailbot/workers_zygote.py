"""The worker zygote: one exec'd process imports and warms up once, then forks each worker."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NoReturn

_PR_SET_PDEATHSIG = 1
_FORK = b"F"  # + two pipe fds: fork a worker on them; answered with its pid
_REAP = b"R"  # + a pid that has exited: wait for it; answered with its exit code
_INT = struct.Struct("!i")
# Garbage collection thresholds for a pass and for workers: a mail leaves few reference
# cycles but allocates many containers, and the default (700, 10, 10) collected every few
# hundred microseconds for nothing; measured, this takes about a third of its time.
GC_THRESHOLDS = (10_000, 20, 20)
# The compiled answer templates, in the data directory (outbox_templates.compiled): the
# zygote loads them instead of compiling them at each start.
TEMPLATE_CACHE = Path("cache", "templates")
_ZYGOTE_GONE = -signal.SIGKILL  # a worker's exit code when the zygote died before reaping it


def _die_with_parent(parent_pid: int) -> None:
    """Linux: this process is killed when its parent dies, even by kill -9 (no orphans)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library is loaded already: no ldconfig run
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: the daemon's own shutdown still ends the workers
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _limit_memory(memory_mb: int) -> None:
    """Cap the address space so one hostile file cannot starve the host."""
    import resource

    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _terminated(signum: int, frame: object) -> None:
    # SIGTERM from the daemon (a time limit): unwind, so conversions kill their process
    # groups and remove their temporary directories in their `finally` clauses.
    raise SystemExit(128 + signum)


# The intake context's parts that stay the same from one mail to the next: a worker is sent
# them once per version, not with every mail (unpickling a Register rebuilds its indexes).
SHARED_FIELDS = ("campaign", "register", "contact", "tools", "staff")


@dataclass(frozen=True)
class Shared:
    """One version of the shared parts of the context, and their pickle."""

    values: tuple[Any, ...]
    version: int
    blob: bytes

    @classmethod
    def of(cls, ctx: Any, version: int) -> Shared:
        values = tuple(getattr(ctx, name) for name in SHARED_FIELDS)
        return cls(values, version, pickle.dumps(values))

    def holds(self, ctx: Any) -> bool:
        """Whether `ctx` has these very parts (or equal ones)."""
        return all(
            v is getattr(ctx, n) or v == getattr(ctx, n)
            for n, v in zip(SHARED_FIELDS, self.values, strict=True)
        )


@dataclass(frozen=True)
class Packed:
    """An intake context on its way to a worker: the shared parts only with a new version."""

    ctx: Any  # the context, its shared parts None
    version: int
    shared: bytes | None  # the pickled shared parts; None when the worker has this version


def _serve(in_fd: int, out_fd: int, fn: Callable[[bytes, Any], Any]) -> None:
    """A worker: decide each (raw, ctx) received, send back the outcome or error."""
    inbox = Connection(in_fd, writable=False)
    outbox = Connection(out_fd, readable=False)
    shared: tuple[int, dict[str, Any]] | None = None  # (version, parts) as last sent
    while True:
        try:
            job = inbox.recv()
        except EOFError:
            return
        if job is None:
            return
        raw, ctx = job
        try:
            if isinstance(ctx, Packed):
                if ctx.shared is not None:
                    parts = pickle.loads(ctx.shared)  # noqa: S301 - the daemon pickled it
                    shared = (ctx.version, dict(zip(SHARED_FIELDS, parts, strict=True)))
                if shared is None or shared[0] != ctx.version:
                    raise RuntimeError(f"context version {ctx.version} never received")
                ctx = replace(ctx.ctx, **shared[1])
            reply: tuple[str, Any] = ("ok", fn(raw, ctx))
        except Exception as exc:  # noqa: BLE001 - the mail's own failure, reported by the parent
            reply = ("err", exc)
        try:
            outbox.send(reply)
        except Exception as exc:  # noqa: BLE001 - an outcome or error that does not pickle
            outbox.send(("err", RuntimeError(f"{type(exc).__name__}: {exc}")))


def _worker(
    ctl: socket.socket, fds: list[int], fn: Callable[[bytes, Any], Any], zygote_pid: int
) -> None:
    """The forked worker: dies with the zygote, unwinds on SIGTERM, never returns."""
    code = 0
    try:
        ctl.close()
        _die_with_parent(zygote_pid)
        signal.signal(signal.SIGTERM, _terminated)
        _serve(fds[0], fds[1], fn)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - a worker must never fall back into the zygote's loop
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _import_readers() -> None:
    """Import every reader, rule and mail module before forking.

    The readers import their libraries (lxml, xlrd, tnefparse) only when their first file
    comes: paid here once instead of on each worker's first mail, before the workers exist.
    """
    import importlib
    import pkgutil

    for package in ("parsers", "rules", "mailbot.mail"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            importlib.import_module(info.name)
    import mimetypes

    mimetypes.init()  # the system's type table, read on the first attachment otherwise


def zygote_main() -> NoReturn:
    """The exec'd zygote: import and warm up, then fork a worker per request until EOF."""
    ctl_fd, memory_mb, parent_pid = (int(a) for a in sys.argv[1:4])
    module, _, name = sys.argv[4].partition(":")
    template_cache = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else None
    _die_with_parent(parent_pid)
    _limit_memory(memory_mb)  # inherited by every worker forked from here
    gc.set_threshold(*GC_THRESHOLDS)  # for the imports below and in every worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the daemon, which stops us
    import importlib

    from mailbot.workers import _decide_in_worker

    fn = getattr(importlib.import_module(module), name)
    if fn is _decide_in_worker:
        # Paid once, not in every worker nor on the first mail: modules and answer templates.
        import mailbot.intake  # noqa: F401
        from outbox_templates import warm

        warm(cache_dir=Path(template_cache) if template_cache else None)
        _import_readers()
    # What start-up built lives as long as the workers: no collection need look at it, and
    # the forked workers' collections do not touch (and so copy) the pages it lies on.
    gc.collect()
    gc.freeze()
    ctl = socket.socket(fileno=ctl_fd)
    me = os.getpid()
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(ctl, 16, 2)
        except OSError:
            break
        if not msg:
            break  # the daemon closed its end: it is done with us
        if msg[:1] == _FORK and len(fds) == 2:
            pid = os.fork()
            if pid == 0:
                _worker(ctl, fds, fn, me)
            for fd in fds:
                os.close(fd)
            ctl.sendall(_INT.pack(pid))
        elif msg[:1] == _REAP:
            (pid,) = _INT.unpack(msg[1:5])
            try:
                code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            except ChildProcessError:
                code = _ZYGOTE_GONE
            ctl.sendall(_INT.pack(code))
        else:
            for fd in fds:
                os.close(fd)
            ctl.sendall(_INT.pack(-1))
    with contextlib.suppress(ChildProcessError):
        while True:  # the workers end on EOF of their pipes; their CPU time counts for us
            os.wait()
    # Nothing here to close or commit: skip the interpreter's teardown of every imported
    # module (tens of milliseconds the daemon would wait for at its exit).
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


class Zygote:
    """The daemon's side of one zygote: fork requests are sent at once, answers read lazily.

    The zygote reaps a worker only when asked, after the worker exited: until then its pid
    cannot be reused, so signals sent through its pidfd reach that worker and no other.
    """

    def __init__(
        self, memory_mb: int, env: dict[str, str], target: str, template_cache: Path | None = None
    ) -> None:
        """Spawn the zygote; `template_cache`: where it keeps the compiled answer templates."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from mailbot.workers_zygote import zygote_main; zygote_main()",
                    str(theirs.fileno()),
                    str(memory_mb),
                    str(os.getpid()),
                    target,
                    str(template_cache or ""),
                ],
                pass_fds=(theirs.fileno(),),
                env=env,
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._ctl = ours
        self._lock = threading.Lock()
        self._unanswered: deque[ForkedProc] = deque()  # forks whose pid is not read yet
        self._broken = False
        self._answered = False  # it has answered a request: its imports are done

    def alive(self) -> bool:
        """Whether it can still fork workers."""
        return not self._broken and self.proc.poll() is None

    def fork(self, in_fd: int, out_fd: int) -> ForkedProc:
        """Ask for a worker on these pipe ends (the caller closes its copies afterwards)."""
        proc = ForkedProc(self)
        with self._lock:
            try:
                socket.send_fds(self._ctl, [_FORK], [in_fd, out_fd])
            except OSError:
                self._broken = True
                proc.returncode = _ZYGOTE_GONE
                return proc
            self._unanswered.append(proc)
        return proc

    def _answer(self) -> int | None:
        try:
            data = self._ctl.recv(16)
        except OSError:
            data = b""
        if len(data) != _INT.size:
            self._broken = True
            return None
        self._answered = True
        return int(_INT.unpack(data)[0])

    def _settle(self) -> None:
        """Read the pids of every fork asked so far (the lock held)."""
        while self._unanswered:
            proc = self._unanswered.popleft()
            pid = None if self._broken else self._answer()
            if pid is None or pid <= 0:
                proc.returncode = _ZYGOTE_GONE
            else:
                proc.attach(pid)

    def settle(self) -> None:
        """Wait for the pids of the workers asked for so far."""
        with self._lock:
            self._settle()

    def reap(self, pid: int) -> int:
        """The exit code of a worker that has exited (the zygote waits for it)."""
        with self._lock:
            self._settle()
            if self._broken:
                return _ZYGOTE_GONE
            try:
                self._ctl.sendall(_REAP + _INT.pack(pid))
            except OSError:
                self._broken = True
                return _ZYGOTE_GONE
            code = self._answer()
            return _ZYGOTE_GONE if code is None else code

    def ready(self) -> bool:
        """Whether it has finished its imports (it answers requests only from then on)."""
        with self._lock:
            if self._answered or self._broken:
                return True
            readable, _, _ = select.select([self._ctl], [], [], 0)
            return bool(readable)

    def kill(self) -> None:
        """Kill it at once (its workers die with it) and wait for it."""
        with self._lock:
            self._broken = True
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()

    def close(self, timeout: float = 5.0) -> None:
        """Let the zygote go (it waits for its workers, which end on EOF of their pipes)."""
        with contextlib.suppress(OSError):
            self._ctl.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ForkedProc:
    """A worker forked by the zygote, driven like a `subprocess.Popen` through its pidfd."""

    def __init__(self, zygote: Zygote) -> None:
        self._zygote = zygote
        self._pid: int | None = None
        self._fd: int | None = None
        self.returncode: int | None = None

    def attach(self, pid: int) -> None:
        self._pid = pid
        try:
            self._fd = os.pidfd_open(pid)
        except OSError:  # cannot happen while the zygote has not reaped it; be safe anyway
            self.returncode = _ZYGOTE_GONE

    @property
    def pid(self) -> int:
        """The worker's process id (0 when it could not be started)."""
        if self._pid is None and self.returncode is None:
            self._zygote.settle()
        return self._pid or 0

    def poll(self) -> int | None:
        """Its exit code, or None while it runs."""
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to exit; subprocess.TimeoutExpired after `timeout` seconds."""
        if self.returncode is None and self.pid and self._fd is not None:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired(f"worker {self._pid}", timeout or 0)
            self.returncode = self._zygote.reap(self._pid or 0)
            os.close(self._fd)
            self._fd = None
        return self.returncode if self.returncode is not None else _ZYGOTE_GONE

    def send_signal(self, signum: int) -> None:
        if self.returncode is None and self.pid and self._fd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._fd, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
