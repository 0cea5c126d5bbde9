"""Training on two machines for real: two `kpstudio train --strategy multiworker` processes on
localhost, each told its place in the cluster by TF_CONFIG (as TensorFlow documents), train in
step; only the chief records the run and writes its files; the model loads and predicts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
pytest.importorskip("tensorflow")

from kpstudio.core.demo import build_demo_project  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.runs import RUNS_DIR, list_runs  # noqa: E402

TIMEOUT_S = 240  # both workers together; a hang (a worker waiting for a dead peer) fails here


def free_ports(n: int) -> list[int]:
    """Ports free on localhost now (bound to port 0, then released for the workers)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("localhost", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    except OSError as exc:
        pytest.skip(f"this platform cannot bind a port on localhost: {exc}")
    finally:
        for s in sockets:
            s.close()


def start_worker(index: int, cluster: dict, folder) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["CUDA_VISIBLE_DEVICES"] = ""  # one CPU replica per worker, even on a GPU machine
    command = [
        sys.executable,
        "-m",
        "kpstudio.cli",
        "train",
        str(folder),
        "--input-size",
        "64",
        "--batch-size",
        "4",
        "--epochs",
        "2",
        "--strategy",
        "multiworker",
        "--json",
    ]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_two_workers_train_in_step_and_only_the_chief_writes(tmp_path):
    folder = tmp_path / "demo"
    build_demo_project(folder, n_images=20)
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    workers = [start_worker(i, cluster, folder) for i in range(2)]
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=TIMEOUT_S))
    except subprocess.TimeoutExpired:
        for worker in workers:
            worker.kill()
        pytest.fail(f"the two workers did not finish in {TIMEOUT_S} s")
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    events = [[json.loads(line) for line in out.splitlines() if line.startswith("{")]
              for out, _ in outputs]  # fmt: skip
    chief, other = ({e["event"]: e for e in w if e["event"] != "epoch"} for w in events)
    # In step: each saw 2 replicas (one per worker) and the same all-reduced loss each epoch.
    assert chief["started"]["replicas"] == other["started"]["replicas"] == 2
    assert chief["started"]["global_batch"] == 8  # 4 per replica
    losses = [[e["loss"] for e in w if e["event"] == "epoch"] for w in events]
    assert len(losses[0]) == 2 and losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert chief["finished"]["chief"] and not other["finished"]["chief"]
    assert chief["finished"]["replicas"] == other["finished"]["replicas"] == 2

    # Only the chief recorded the run and wrote its folder: config, checkpoint, model.
    assert other["finished"]["run"] is None and other["finished"]["model"] is None
    with Project.open(folder, readonly=True) as project:
        runs = list_runs(project)
        assert [r.id for r in runs] == [chief["finished"]["run"]]
        run = runs[0]
        assert run.status == "finished" and run.metrics["replicas"] == 2
        assert run.config["strategy"] == "multiworker" and len(run.history) == 2
        model = run.model_file(project)
    assert [p.name for p in (folder / RUNS_DIR).iterdir()] == [run.id]
    files = {p.name for p in (folder / RUNS_DIR / run.id).iterdir()}
    assert files == {"config.json", "checkpoint.npz", "model.kpmodel"}
    assert str(model) == chief["finished"]["model"]

    from kpstudio.ml.predictor import Predictor

    predictor = Predictor.from_file(model)
    pred = predictor.predict_array(np.zeros((120, 160, 3), np.uint8))
    assert pred.xy.shape == (len(predictor.skeleton), 2) and np.isfinite(pred.xy).all()
