"""Training runs: where a run's files live and its lifecycle in the project store.

A run's files live in `run_folder(project folder, run id)` (`<project>/runs/<run id>/`, spelled
here only); its row in the store is what lists and compares runs. One lifecycle, shared by the
`kpstudio train` command and the studio:

    start_run       the row, status "running", with the pid and host of the training process
    record_training runs the training and writes the final row whatever happens:
                    finish_run ("finished" / "stopped", with history, metrics and model) or
                    fail_run ("failed", with the error)

The final row is written by whoever runs the training (the CLI process, the studio's worker
thread through a worker handle of the store), so it never depends on a window still being open.
A row still "running" whose process is gone (killed, crashed, power cut) reads as "interrupted".
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from kpstudio.core.project import Project, ProjectError

RUNS_DIR = "runs"
RUN_STATUSES = ("running", "finished", "stopped", "failed")  # what the store holds
INTERRUPTED = "interrupted"  # read, never written: "running" and its process is gone
ACTIVE_RUN_KEY = "active_run"
_COLUMNS = "id, created, arch, status, config, history, metrics, model_path, pid, host"


@dataclass(frozen=True)
class RunRecord:
    id: str
    created: float
    arch: str
    status: str  # one of RUN_STATUSES, or INTERRUPTED
    config: dict
    history: list
    metrics: dict
    model_path: str | None  # relative to the project folder
    pid: int | None = None  # the training process (None: a run from before schema 4)
    host: str | None = None

    def model_file(self, project: Project) -> Path | None:
        return (project.folder / self.model_path).resolve() if self.model_path else None


class TrainingOutcome(Protocol):
    """What a training function returns (kpstudio.ml.train.RunResult is one)."""

    status: str  # finished | stopped
    config: dict
    history: list
    metrics: dict
    model_path: Path | None


def run_folder(project_folder: str | os.PathLike, run_id: str) -> Path:
    """The folder holding a run's files (config, checkpoint, model file)."""
    return Path(project_folder) / RUNS_DIR / run_id


def new_run_id(arch: str) -> str:
    """A run id that sorts by time and says what was trained: 20261124-213000-default."""
    return time.strftime("%Y%m%d-%H%M%S") + f"-{arch}"


# -- the lifecycle -----------------------------------------------------------------------------
def start_run(project: Project, arch: str, config: dict, run_id: str | None = None) -> RunRecord:
    """Record a new run as "running" by this process and make its folder. Without a
    `run_id`, a new one: two runs started within one second get -2, -3, ... after the time."""
    with project.transaction() as conn:
        taken = {row[0] for row in conn.execute("SELECT id FROM runs")}
        if run_id is None:
            base = run_id = new_run_id(arch)
            n = 1
            while run_id in taken or run_folder(project.folder, run_id).exists():
                n += 1
                run_id = f"{base}-{n}"
        elif run_id in taken:
            raise ProjectError(f"project {project.folder} already has a run {run_id!r}")
        run_folder(project.folder, run_id).mkdir(parents=True, exist_ok=True)
        conn.execute(
            f"INSERT INTO runs({_COLUMNS}) "
            "VALUES (?, ?, ?, 'running', ?, '[]', '{}', NULL, ?, ?)",
            (run_id, time.time(), arch, json.dumps(config), os.getpid(), socket.gethostname()),
        )
    return get_run(project, run_id)


def finish_run(project: Project, run_id: str, outcome: TrainingOutcome) -> RunRecord:
    """The end of a run that trained: "finished", or "stopped" by the user, with its model."""
    if outcome.status not in ("finished", "stopped"):
        raise ProjectError(f"a run ends finished or stopped, not {outcome.status!r}")
    return _update(project, run_id, status=outcome.status, config=json.dumps(outcome.config),
                   history=json.dumps(outcome.history),
                   metrics=json.dumps(outcome.metrics, allow_nan=False),
                   model_path=project.relative_path(outcome.model_path)
                   if outcome.model_path else None)  # fmt: skip


def publish_model(project: Project, run_id: str, model_path, metrics: dict) -> RunRecord:
    """A running run's model so far (Assist: each better one becomes usable while training
    goes on): the run keeps running, with a model to predict with."""
    return _update(project, run_id, model_path=project.relative_path(model_path),
                   metrics=json.dumps(metrics, allow_nan=False))  # fmt: skip


def fail_run(project: Project, run_id: str, error: str) -> RunRecord:
    """The end of a run that broke: "failed", with the error's first line."""
    first_line = (error.strip().splitlines() or ["unknown error"])[0]
    return _update(project, run_id, status="failed", metrics=json.dumps({"error": first_line}))


Outcome = TypeVar("Outcome", bound=TrainingOutcome)


def record_training(
    open_store: Callable[[], AbstractContextManager[Project]], run_id: str,
    train: Callable[[], Outcome],
) -> Outcome:  # fmt: skip
    """Run `train()` and write the run's final row whatever happens: finish_run on a result,
    fail_run (then re-raise) on an exception, a KeyboardInterrupt or a result that cannot be
    recorded included.

    `open_store()` gives a store handle for the writing thread and closes it afterwards:
    `lambda: Project.open(folder)` in the CLI, `project.worker_handle` in the studio's worker."""
    try:
        outcome = train()
        with open_store() as store:
            finish_run(store, run_id, outcome)
    except BaseException as exc:
        try:
            with open_store() as store:
                fail_run(store, run_id, f"{type(exc).__name__}: {exc}")
        except Exception as record_error:  # the training error is the one to report
            exc.add_note(f"the run could not be recorded as failed: {record_error}")
        raise
    return outcome


def _update(project: Project, run_id: str, **columns) -> RunRecord:
    names = ", ".join(f"{name} = ?" for name in columns)
    with project.transaction() as conn:
        found = conn.execute(f"UPDATE runs SET {names} WHERE id = ?", (*columns.values(), run_id))
        if found.rowcount == 0:
            raise ProjectError(f"project {project.folder} has no run {run_id!r} to update")
    return get_run(project, run_id)


def record_run(
    project: Project, run_id: str, arch: str, status: str, config: dict,
    history: list | None = None, metrics: dict | None = None, model_path: Path | None = None,
) -> RunRecord:  # fmt: skip
    """Insert or replace a run's row in one go (tests, benchmarks, imported runs); training
    goes through start_run and record_training."""
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


# -- reading -----------------------------------------------------------------------------------
def list_runs(project: Project) -> list[RunRecord]:
    rows = project.query(f"SELECT {_COLUMNS} FROM runs ORDER BY created")
    return [_record(r) for r in rows]


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
    rid, created, arch, status, config, history, metrics, model_path, pid, host = row
    if status == "running" and not process_alive(pid, host, since=created):
        status = INTERRUPTED
    return RunRecord(rid, created, arch, status, json.loads(config), json.loads(history),
                     json.loads(metrics), model_path, pid, host)  # fmt: skip


def process_alive(pid: int | None, host: str | None, since: float | None = None) -> bool:
    """Whether the process that started a run (at time `since`) may still be training it. A
    run from before pids were recorded is taken as gone; one on another host cannot be checked
    from here and is taken as alive; a process with that pid started after `since` is another
    one that reused the number (checked where /proc tells start times)."""
    if pid is None:
        return False
    if host != socket.gethostname():
        return True
    if os.name == "nt":  # pragma: no cover - os.kill(pid, 0) would terminate it on Windows
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        pass
    started = _process_start_time(pid)
    # /proc's boot time has whole seconds: a second of slack for the process that started it.
    return since is None or started is None or started <= since + 1.0


def _process_start_time(pid: int) -> float | None:
    """When a process started (seconds since the epoch), from Linux's /proc; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))  # fmt: skip
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, "starttime", in clock ticks
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _windows_process_alive(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes

    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    code = ctypes.c_ulong()
    try:
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
    finally:
        kernel32.CloseHandle(handle)
    return code.value == 259  # STILL_ACTIVE


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
