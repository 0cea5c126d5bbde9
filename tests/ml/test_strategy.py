"""Which process is the chief of a cluster described by TF_CONFIG or by a SLURM job step."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

from kpstudio.ml.strategy import cluster_resolver, is_chief  # noqa: E402

SLURM_VARS = ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST",
              "SLURM_STEP_TASKS_PER_NODE")  # fmt: skip


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch):
    for name in ("TF_CONFIG", *SLURM_VARS):
        monkeypatch.delenv(name, raising=False)


def tf_config(monkeypatch, cluster: dict, task_type: str, index: int) -> None:
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})
    )


def test_one_process_without_a_cluster_is_the_chief():
    assert is_chief(cluster_resolver()) and is_chief(None)


@pytest.mark.parametrize("cluster, task, chief", [
    ({"worker": ["a:1", "b:1"]}, ("worker", 0), True),
    ({"worker": ["a:1", "b:1"]}, ("worker", 1), False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("chief", 0), True),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("worker", 0), False),
])  # fmt: skip
def test_tf_config_names_the_chief(monkeypatch, cluster, task, chief):
    tf_config(monkeypatch, cluster, *task)
    resolver = cluster_resolver()
    assert (resolver.task_type, resolver.task_id) == task
    assert is_chief(resolver) == chief


def test_a_broken_tf_config_is_named(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{'cluster': ")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        cluster_resolver()


@pytest.mark.parametrize("rank", [0, 1])
def test_a_slurm_step_without_tf_config_is_resolved_from_slurm(monkeypatch, rank):
    monkeypatch.setenv("SLURM_PROCID", str(rank))
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    monkeypatch.setenv("SLURM_STEP_NODELIST", "node[1-2]")
    monkeypatch.setenv("SLURM_STEP_TASKS_PER_NODE", "1(x2)")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # CPU nodes (the resolver rewrites it)
    resolver = cluster_resolver()
    assert isinstance(resolver, tf.distribute.cluster_resolver.SlurmClusterResolver)
    assert resolver.cluster_spec().as_dict() == {"worker": ["node1:8888", "node2:8888"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", rank)
    assert is_chief(resolver) == (rank == 0)
