"""Deciding mail in worker processes: all cores busy, hostile files bounded in time and memory."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import pickle
import resource
import signal
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, is_dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from mailbot.intake import Tools

K = TypeVar("K")
Decide = Callable[[bytes, Any], Any]


def local_tools() -> Tools:
    """The converters this machine offers: LibreOffice and a RAR tool when installed."""
    from mailbot.intake import Tools
    from mailbot.mail.unpack.rar import rar_tool_available
    from parsers.convert import soffice_converter

    return Tools(office=soffice_converter(), rar=rar_tool_available())


class DecisionTimeout(Exception):
    """A mail took longer than the time limit to decide; its worker was stopped."""


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Linux: a worker is killed when the daemon dies, even by kill -9 (no orphans)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: the pool's own shutdown still ends the workers
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _limit_worker(memory_mb: int, parent_pid: int) -> None:
    """Worker start-up: cap the address space so one hostile file cannot starve the host."""
    _die_with_parent(parent_pid)
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@dataclass(frozen=True)
class _Packed:
    """An intake context on its way to a worker, its unit register as pickled bytes.

    Unpickling a Register rebuilds its name indexes (about as long as deciding a small
    mail); as bytes it is rebuilt once per worker and register, not once per mail.
    """

    ctx: Any
    register: bytes


@lru_cache(maxsize=2)
def _register_from(blob: bytes) -> Any:
    # Per worker process; a Register is immutable, so one copy serves every mail.
    return pickle.loads(blob)  # noqa: S301 - our own parent process pickled it


def _decide_in_worker(raw: bytes, ctx: Any) -> Any:
    from mailbot.intake import process_mail

    if isinstance(ctx, _Packed):
        ctx = replace(ctx.ctx, register=_register_from(ctx.register))
    return process_mail(raw, ctx)


class Decider:
    """Runs the pure `process_mail` for a batch; inline when `workers` is 0.

    Inline mode calls `inline` (looked up by the caller at call time), which keeps
    single-process runs and tests simple; worker mode uses a pool of spawned processes
    that lives as long as the Decider, so its start-up is paid once per daemon.
    """

    def __init__(
        self,
        workers: int,
        timeout: float,
        memory_mb: int,
        inline: Callable[[], Decide],
        worker_fn: Decide = _decide_in_worker,
    ) -> None:
        self.workers = max(0, workers)
        self._worker_fn = worker_fn  # a module-level function: it travels to the workers
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._inline = inline
        self._pool: ProcessPoolExecutor | None = None
        self._register_blob: tuple[Any, bytes] | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_limit_worker,
                initargs=(self.memory_mb, os.getpid()),
            )
        return self._pool

    def _kill_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # A stuck worker never returns: stop the processes, not just the executor.
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
        pool.shutdown(wait=True, cancel_futures=True)

    def decide(self, jobs: Sequence[tuple[K, bytes, Any]]) -> Iterator[tuple[K, Any]]:
        """Yield (key, outcome or the exception it raised) in the order of `jobs`."""
        if self.workers == 0:
            decide = self._inline()
            for key, raw, ctx in jobs:
                try:
                    yield key, decide(raw, ctx)
                except Exception as exc:  # noqa: BLE001 - reported per mail by the caller
                    yield key, exc
            return
        # Several mails per worker in flight, topped up as each outcome is taken, so workers
        # keep deciding while this process records the outcomes already returned.
        yield from self._decide_window(list(jobs), max(1, self.workers) * 8)

    def _pack(self, ctx: Any) -> Any:
        """The context as `_decide_in_worker` gets it (other worker functions: unchanged)."""
        register = getattr(ctx, "register", None)
        if (
            self._worker_fn is not _decide_in_worker
            or register is None
            or not is_dataclass(ctx)
            or isinstance(ctx, type)
        ):
            return ctx
        if self._register_blob is None or self._register_blob[0] is not register:
            self._register_blob = (register, pickle.dumps(register))
        return _Packed(replace(ctx, register=None), self._register_blob[1])

    def _decide_window(
        self, jobs: list[tuple[K, bytes, Any]], window: int
    ) -> Iterator[tuple[K, Any]]:
        if not jobs:
            return
        pool = self._ensure_pool()
        futures: deque[Future[Any]] = deque()
        submitted = 0
        for index, (key, _raw, _ctx) in enumerate(jobs):
            while submitted < len(jobs) and len(futures) < window:
                _, raw, ctx = jobs[submitted]
                futures.append(pool.submit(self._worker_fn, raw, self._pack(ctx)))
                submitted += 1
            future = futures.popleft()
            try:
                yield key, future.result(timeout=self.timeout)
            except FutureTimeout:
                log.warning("deciding mail %s took over %.0fs: worker stopped", key, self.timeout)
                self._kill_pool()
                yield key, DecisionTimeout(f"no decision within {self.timeout:.0f}s")
                # The mails in flight shared the stopped pool: decide the rest afresh.
                yield from self._decide_window(jobs[index + 1 :], window)
                return
            except BrokenProcessPool as exc:
                log.warning("a worker died while deciding mail %s: %s", key, exc)
                self._kill_pool()
                yield key, exc
                yield from self._decide_window(jobs[index + 1 :], window)
                return
            except Exception as exc:  # noqa: BLE001 - the mail's own failure
                yield key, exc

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
