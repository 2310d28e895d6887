"""A run: plan -> execute -> score. Each step is its own module; this one only strings them together.

1. :func:`hashbench.run.plan.plan` expands the grid into tasks (validated before anything trains);
2. an executor (:mod:`hashbench.run.executors`) runs the unfinished tasks through
   :func:`hashbench.run.execute.execute_cell`, which writes one record per cell;
3. :func:`hashbench.run.scoring.score_all` computes (or reuses) every record's scores;
4. the caller writes tables (:func:`hashbench.results.tables.write_tables`).

Finished cells (a readable record at the task's path) are skipped unless ``force``; a corrupt record
is reported by name and its cell runs again. A failed cell does not stop the others: failures are
reported together once the rest finished; but a full or unwritable folder
(:class:`~hashbench.errors.StorageError`) stops the run at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import records as rec
from ..device import resolve_device
from ..errors import HashbenchError, StorageError
from ..io import ensure_writable_dir
from .execute import RunContext, load_data, prepare, reset
from .executors import LocalExecutor, Outcome
from .plan import Plan, RunConfig, Task, dataset_dirname, parse_bits, parse_params, parse_seeds, plan
from .scoring import metric_spec, score_all

__all__ = ["RunConfig", "RunResult", "run_grid", "dataset_dirname", "parse_bits", "parse_params", "parse_seeds"]


class CellsFailed(HashbenchError):
    """Some cells of a run failed; the others finished and their records are kept."""


@dataclass
class RunResult:
    """What a run did: its plan, the folder, which tasks ran and which failed."""

    plan: Plan
    folder: Path
    spec: dict[str, Any]
    ran: list[Task] = field(default_factory=list)
    failed: list[Outcome] = field(default_factory=list)

    @property
    def record_paths(self) -> list[Path]:
        return [Path(t.path) for t in self.plan.tasks if Path(t.path).exists()]

    def raise_for_failures(self) -> None:
        """Re-raise a failed cell's programming error as it was, or one :class:`CellsFailed` for user errors."""
        if not self.failed:
            return
        bugs = [o.error for o in self.failed if not isinstance(o.error, HashbenchError)]
        if bugs:
            raise bugs[0]
        lines = "; ".join(f"{o.task.label}: {o.error}" for o in self.failed[:5])
        raise CellsFailed(
            f"{len(self.failed)} of {len(self.ran) + len(self.failed)} cells failed ({lines}); "
            f"the other cells' records are kept in {self.plan.records_dir}"
        )


def context(cfg: RunConfig, protocol: str, representation: str, device: str) -> RunContext:
    return RunContext(
        dataset=cfg.dataset,
        data_root=cfg.data_root,
        download=cfg.download,
        protocol=protocol,
        representation=representation,
        weights=cfg.weights,
        cache_dir=cfg.cache_dir,
        device=device,
        progress=cfg.progress,
        command=cfg.command,
        refresh_features=cfg.refresh_features,
    )


def _bar(items, total: int, enabled: bool):
    if not enabled or total == 0:
        return items, None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="cell", leave=True)
    return items, bar


def run_grid(cfg: RunConfig, log: Callable[[str], None] = print, executor=None, bar=None) -> RunResult:
    """Run every cell of the grid (skipping finished ones unless ``cfg.force``), then score every record.

    Failed cells are in ``result.failed``; call ``result.raise_for_failures()`` once tables are written.
    ``bar``: a progress bar (tqdm) shared by several runs (``paper --run``: one bar, one ETA over the
    whole plan), advanced by one per finished cell and left open; without it a run draws its own.
    """
    ensure_writable_dir(cfg.out)
    reset()
    device = str(resolve_device(cfg.device))
    dataset = load_data(cfg.dataset, cfg.data_root, cfg.download)  # 1. the data
    p = plan(cfg, dataset, device)  # 2. the cells, checked before anything trains
    ctx = context(cfg, p.protocol, p.representation, device)
    folder = p.records_dir.parent
    todo = [t for t in p.tasks if cfg.force or not rec.is_finished(t.path)]
    if len(todo) < len(p.tasks):
        log(
            f"{len(p.tasks) - len(todo)} of {len(p.tasks)} cells already finished in {p.records_dir}; "
            "reusing them (--force re-runs)"
        )
    result = RunResult(p, folder, metric_spec(p.topk))
    if todo:
        prepare(ctx, todo)
        executor = executor or LocalExecutor(cfg.jobs)
        own = bar is None
        outcomes, bar = (
            _bar(executor.run(ctx, todo), len(todo), cfg.progress) if own else (executor.run(ctx, todo), bar)
        )
        try:
            for o in outcomes:
                if o.error is None:
                    result.ran.append(o.task)
                elif isinstance(o.error, StorageError):
                    raise o.error  # a full or unwritable folder: every later cell would fail the same way
                else:
                    result.failed.append(o)
                    log(f"cell {o.task.label} failed: {type(o.error).__name__}: {o.error}")
                if bar is not None:
                    bar.set_description(o.task.label)
                    bar.update(1)
        finally:
            if bar is not None and own:
                bar.close()
    score_all(result.record_paths, result.spec, progress=cfg.progress)
    return result


def get_executor(name: str = "local", *, jobs: int = 1, address: str | None = None, threads: int | None = None):
    """An executor by name: ``local`` (``jobs`` processes) or ``ray`` (``address`` of a cluster, or local)."""
    if name == "local":
        if address:
            from ..errors import InvalidInput

            raise InvalidInput("--address is for --executor ray; the local executor runs on this machine")
        return LocalExecutor(jobs, threads)
    if name == "ray":
        from .ray_executor import RayExecutor  # extra: pip install 'hashbench[ray]'

        return RayExecutor(address=address)
    from ..errors import UnknownName

    raise UnknownName(f"unknown executor {name!r}; use --executor local or --executor ray")
