"""Executors: where the cells of a plan run. The runner needs nothing of an executor but this interface.

An executor takes the run's :class:`~hashbench.run.execute.RunContext` and a list of
:class:`~hashbench.run.plan.Task` and yields one :class:`Outcome` per task as cells finish (in any
order): the record's metadata, or the error that cell raised. A failed cell never stops the
others; the runner reports failures after the rest finished. Every executor calls the same
:func:`hashbench.run.execute.execute_cell`, which writes each record atomically, so resumption,
``--force`` and tables behave alike whatever ran the cells.

- :class:`LocalExecutor` (default): in this process (``jobs=1``), or ``jobs`` worker processes
  on this machine, each with ``cores // jobs`` threads, taking the cells longest first
  (:func:`hashbench.run.plan.longest_first`). Workers end when the main process dies, even by kill -9
  (:func:`_die_with_parent`).
- ``hashbench.run.ray_executor.RayExecutor`` (extra ``hashbench[ray]``): each cell a Ray task. Its
  workers end when the main process dies too, by Ray's own fate sharing (a local Ray instance ends
  with it; on a cluster given by address, the run's cells stop and the cluster stays up).

``hashbench.run.runner.get_executor`` picks one by name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .execute import RunContext, execute_cell
from .plan import Task, longest_first


@dataclass
class Outcome:
    """A finished task: its record's metadata, or the exception that ended it."""

    task: Task
    meta: dict[str, Any] | None = None
    error: BaseException | None = None


class Executor(Protocol):
    """Runs tasks; yields an Outcome for each, as they finish."""

    def run(self, ctx: RunContext, tasks: Sequence[Task]) -> Iterator[Outcome]: ...


#: seconds between two looks of a worker's watchdog at its parent
WATCHDOG_S = 1.0


def _die_with_parent(parent: int) -> None:
    """End this worker when process ``parent`` dies (a kill -9 of the run leaves no worker behind).

    On Linux the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``); everywhere,
    a daemon thread also checks every :data:`WATCHDOG_S` seconds that the parent is still this
    process's parent, and ends the process when it is not. A worker writes only through atomic
    writes, so ending it at any moment leaves nothing half-written.
    """
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog alone
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
        return

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_S)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="hashbench-parent-watchdog", daemon=True).start()


def _worker_init(threads: int, parent: int | None = None) -> None:
    from ..device import keep_freed_memory, limit_threads

    if parent is not None:
        _die_with_parent(parent)
    limit_threads(threads)
    keep_freed_memory()


def _run_one(ctx: RunContext, task: Task) -> dict[str, Any]:
    return execute_cell(ctx, task)


class LocalExecutor:
    """Cells on this machine: in process (``jobs=1``) or in ``jobs`` spawned worker processes."""

    def __init__(self, jobs: int = 1, threads_per_job: int | None = None):
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            from ..errors import InvalidInput

            raise InvalidInput(f"--jobs {jobs!r}: give a positive number of parallel cells")
        self.jobs = jobs
        self.threads_per_job = threads_per_job or max(1, (os.cpu_count() or 1) // jobs)

    def pool(self, workers: int):
        """A pool of ``workers`` spawned processes that end when this process dies."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),  # no fork of a process holding thread pools
            initializer=_worker_init,
            initargs=(self.threads_per_job, os.getpid()),
        )

    def run(self, ctx: RunContext, tasks: Sequence[Task]) -> Iterator[Outcome]:
        if self.jobs == 1 or len(tasks) <= 1:
            for t in tasks:
                try:
                    yield Outcome(t, meta=execute_cell(ctx, t))
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:  # noqa: BLE001 - reported by the runner with the cell's name
                    yield Outcome(t, error=exc)
            return
        from concurrent.futures import as_completed

        tasks = longest_first(tasks)  # long cells first: no worker ends the run alone on a long cell
        with self.pool(min(self.jobs, len(tasks))) as pool:
            futures = {pool.submit(_run_one, ctx, t): t for t in tasks}
            try:
                for f in as_completed(futures):
                    t = futures[f]
                    try:
                        yield Outcome(t, meta=f.result())
                    except Exception as exc:  # noqa: BLE001
                        yield Outcome(t, error=exc)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
