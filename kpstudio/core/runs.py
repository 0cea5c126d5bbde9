"""Training runs recorded in the project: config, per-epoch history, metrics, the model file.

A run's files live in `<project>/runs/<run id>/`; its row here is what lists and compares runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from kpstudio.core.project import Project, ProjectError

RUN_STATUSES = ("running", "finished", "stopped", "failed")


@dataclass(frozen=True)
class RunRecord:
    id: str
    created: float
    arch: str
    status: str
    config: dict
    history: list
    metrics: dict
    model_path: str | None  # relative to the project folder

    def model_file(self, project: Project) -> Path | None:
        return (project.folder / self.model_path).resolve() if self.model_path else None


def new_run_id(arch: str) -> str:
    """A run id that sorts by time and says what was trained: 20261124-213000-default."""
    return time.strftime("%Y%m%d-%H%M%S") + f"-{arch}"


def record_run(
    project: Project, run_id: str, arch: str, status: str, config: dict,
    history: list | None = None, metrics: dict | None = None, model_path: Path | None = None,
) -> RunRecord:  # fmt: skip
    """Insert or update a run (one transaction)."""
    if status not in RUN_STATUSES:
        raise ProjectError(f"run status must be one of {RUN_STATUSES}, not {status!r}")
    rel = project.relative_path(model_path) if model_path else None
    with project.transaction() as conn:
        conn.execute(
            "INSERT INTO runs(id, created, arch, status, config, history, metrics, model_path) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "status = excluded.status, config = excluded.config, history = excluded.history, "
            "metrics = excluded.metrics, model_path = excluded.model_path",
            (run_id, time.time(), arch, status, json.dumps(config), json.dumps(history or []),
             json.dumps(metrics or {}, allow_nan=False), rel),
        )  # fmt: skip
    return get_run(project, run_id)


def list_runs(project: Project) -> list[RunRecord]:
    rows = project.query(
        "SELECT id, created, arch, status, config, history, metrics, model_path FROM runs "
        "ORDER BY created"
    )
    return [_record(r) for r in rows]


ACTIVE_RUN_KEY = "active_run"


def get_run(project: Project, run_id: str | None = None) -> RunRecord:
    """A run by id; with `run_id` None, the active model: the run the user chose
    (set_active_run) while it has a model, else the newest run that produced one."""
    runs = list_runs(project)
    if run_id is None:
        with_model = [r for r in runs if r.model_path]
        if not with_model:
            raise ProjectError(f"project {project.folder} has no trained run yet")
        chosen = project.meta(ACTIVE_RUN_KEY)
        return next((r for r in with_model if r.id == chosen), with_model[-1])
    for run in runs:
        if run.id == run_id:
            return run
    known = ", ".join(r.id for r in runs) or "none"
    raise ProjectError(f"project {project.folder} has no run {run_id!r} (runs: {known})")


def _record(row) -> RunRecord:
    rid, created, arch, status, config, history, metrics, model_path = row
    return RunRecord(rid, created, arch, status, json.loads(config), json.loads(history),
                     json.loads(metrics), model_path)  # fmt: skip


def set_active_run(project: Project, run_id: str | None) -> None:
    """Make `run_id` (a run with a model) the project's active model; None goes back to
    following the newest run."""
    if run_id is not None and not get_run(project, run_id).model_path:
        raise ProjectError(f"run {run_id} has no model file to predict with")
    with project.transaction() as conn:
        if run_id is None:
            conn.execute("DELETE FROM meta WHERE key = ?", (ACTIVE_RUN_KEY,))
        else:
            project._set_meta(ACTIVE_RUN_KEY, run_id)  # the store's one meta writer
