"""The run lifecycle: start → finished / stopped / failed, the final row written whatever
happens, a dead process's run read as interrupted, and the schema 3 → 4 migration."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kpstudio.core.project import DB_NAME, Project, ProjectError
from kpstudio.core.runs import (
    INTERRUPTED,
    fail_run,
    get_run,
    list_runs,
    process_alive,
    record_training,
    run_folder,
    start_run,
)
from kpstudio.core.schema import SCHEMA_VERSION, migrate
from kpstudio.core.skeleton import Skeleton


@dataclass
class Outcome:
    status: str
    model_path: Path | None
    config: dict = field(default_factory=lambda: {"epochs": 2})
    history: list = field(default_factory=lambda: [{"epoch": 1}, {"epoch": 2}])
    metrics: dict = field(default_factory=lambda: {"mean_px": 1.5})


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "p", Skeleton.create(["a", "b"])) as p:
        yield p


def test_start_records_the_process_and_makes_the_folder(project):
    run = start_run(project, "default", {"epochs": 2}, run_id="r1")
    assert run.status == "running" and run.config == {"epochs": 2}
    assert (run.pid, run.host) == (os.getpid(), socket.gethostname())
    assert run_folder(project.folder, "r1") == project.folder / "runs" / "r1"
    assert run_folder(project.folder, "r1").is_dir()


@pytest.mark.parametrize("status", ["finished", "stopped"])
def test_record_training_writes_the_end_through_the_given_store(project, status):
    run = start_run(project, "default", {}, run_id="r1")
    model = run_folder(project.folder, run.id) / "model.kpmodel"
    model.write_bytes(b"x")
    writers = []

    def open_store():
        writers.append(threading.current_thread())
        return project.worker_handle()

    def train_in_thread():
        record_training(open_store, run.id, lambda: Outcome(status, model))

    thread = threading.Thread(target=train_in_thread)
    thread.start()
    thread.join()
    assert writers == [thread]  # written from the training thread, not the caller's
    done = get_run(project, "r1")
    assert done.status == status and done.history == [{"epoch": 1}, {"epoch": 2}]
    assert done.metrics == {"mean_px": 1.5} and done.model_file(project) == model.resolve()


def test_a_failing_training_is_recorded_failed_and_raised(project):
    run = start_run(project, "seed", {"epochs": 3}, run_id="r1")

    def broken():
        raise FloatingPointError("the training loss became nan at epoch 4\nmore")

    with pytest.raises(FloatingPointError):
        record_training(project.worker_handle, run.id, broken)
    failed = get_run(project, "r1")
    assert failed.status == "failed" and failed.config == {"epochs": 3}
    error = "FloatingPointError: the training loss became nan at epoch 4"
    assert failed.metrics == {"error": error}
    assert failed.model_path is None


def test_an_end_other_than_finished_or_stopped_is_refused(project):
    start_run(project, "default", {}, run_id="r1")
    with pytest.raises(ProjectError, match="finished or stopped"):
        record_training(project.worker_handle, "r1", lambda: Outcome("failed", None))
    # The refusal itself was recorded as the run's failure.
    assert get_run(project, "r1").status == "failed"
    with pytest.raises(ProjectError, match="no run 'nope'"):
        fail_run(project, "nope", "boom")


def test_a_run_whose_process_died_reads_as_interrupted(project):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    start_run(project, "default", {}, run_id="alive")
    start_run(project, "default", {}, run_id="dead")
    start_run(project, "default", {}, run_id="elsewhere")
    with project.transaction() as conn:
        conn.execute("UPDATE runs SET pid = ? WHERE id = 'dead'", (int(dead.stdout),))
        conn.execute("UPDATE runs SET host = 'another-machine' WHERE id = 'elsewhere'")
    statuses = {r.id: r.status for r in list_runs(project)}
    assert statuses == {"alive": "running", "dead": INTERRUPTED, "elsewhere": "running"}
    assert not process_alive(None, socket.gethostname())


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux's /proc")
def test_a_pid_reused_by_a_later_process_is_not_the_run(project):
    start_run(project, "default", {}, run_id="r1")
    assert get_run(project, "r1").status == "running"
    with project.transaction() as conn:  # started before this process: the pid was reused
        conn.execute("UPDATE runs SET created = ? WHERE id = 'r1'", (time.time() - 10 * 86400,))
    assert get_run(project, "r1").status == INTERRUPTED


def test_schema_3_running_run_is_migrated_and_reads_as_interrupted(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    conn = sqlite3.connect(folder / DB_NAME, isolation_level=None)
    migrate(conn, target=3)  # a project as kpstudio wrote it before runs had a pid
    conn.execute("INSERT INTO runs(id, created, arch, status) VALUES ('r0', 1, 'seed', 'running')")
    conn.execute("INSERT INTO runs(id, created, arch, status, model_path) "
                 "VALUES ('r1', 2, 'seed', 'finished', 'runs/r1/model.kpmodel')")  # fmt: skip
    conn.close()
    with Project.open(folder) as project:
        assert project.schema_version == SCHEMA_VERSION
        runs = {r.id: r for r in list_runs(project)}
        # Left "running" by a kpstudio that could not record its end: not running any more.
        assert runs["r0"].status == INTERRUPTED and runs["r0"].pid is None
        assert runs["r1"].status == "finished" and get_run(project).id == "r1"
        start_run(project, "default", {}, run_id="r2")
        assert get_run(project, "r2").pid == os.getpid()
    assert (folder / f"{DB_NAME}.v3.bak").is_file()


def test_runs_started_within_one_second_get_distinct_ids(project, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt: "20261129-050000")
    first = start_run(project, "default", {})
    second = start_run(project, "default", {})
    assert (first.id, second.id) == ("20261129-050000-default", "20261129-050000-default-2")
    assert [r.id for r in list_runs(project)] == [first.id, second.id]
    with pytest.raises(ProjectError, match="already has a run"):
        start_run(project, "default", {}, run_id=first.id)
