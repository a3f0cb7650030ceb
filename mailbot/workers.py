"""Deciding mail in worker processes: all cores busy, hostile files bounded in time and memory."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K")
Decide = Callable[[bytes, Any], Any]


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


def _decide_in_worker(raw: bytes, ctx: Any) -> Any:
    from mailbot.intake import process_mail

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
        # Several mails per worker in flight, so workers keep deciding while this process
        # records the outcomes already returned.
        window = max(1, self.workers) * 8
        for start in range(0, len(jobs), window):
            yield from self._decide_window(list(jobs[start : start + window]))

    def _decide_window(self, jobs: list[tuple[K, bytes, Any]]) -> Iterator[tuple[K, Any]]:
        if not jobs:
            return
        pool = self._ensure_pool()
        futures: list[Future[Any]] = [
            pool.submit(self._worker_fn, raw, ctx) for _, raw, ctx in jobs
        ]
        for index, ((key, _raw, _ctx), future) in enumerate(zip(jobs, futures, strict=True)):
            try:
                yield key, future.result(timeout=self.timeout)
            except FutureTimeout:
                log.warning("deciding mail %s took over %.0fs: worker stopped", key, self.timeout)
                self._kill_pool()
                yield key, DecisionTimeout(f"no decision within {self.timeout:.0f}s")
                # The rest of this window shared the stopped pool: decide them afresh.
                yield from self._decide_window(jobs[index + 1 :])
                return
            except BrokenProcessPool as exc:
                log.warning("a worker died while deciding mail %s: %s", key, exc)
                self._kill_pool()
                yield key, exc
                yield from self._decide_window(jobs[index + 1 :])
                return
            except Exception as exc:  # noqa: BLE001 - the mail's own failure
                yield key, exc

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
