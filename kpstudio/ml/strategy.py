"""tf.distribute strategies by name: one device, the GPUs (or devices) of one machine, or
several machines.

Several machines ("multiworker") read their cluster from TF_CONFIG, as TensorFlow documents, or
inside a SLURM job step without TF_CONFIG from SLURM's variables (SlurmClusterResolver). Every
worker runs the same training; only the chief (the "chief" task, else worker 0) writes files.
"""

from __future__ import annotations

import json
import os
import shutil

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")
SLURM_PORT = 8888  # SlurmClusterResolver's first port on each node
CPU_TASKS_PER_NODE_MAX = 1024  # tasks of one CPU node SlurmClusterResolver can place


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        # Without GPUs, mirror over the logical CPU devices (tests split the CPU in two).
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=cluster_resolver())
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def cluster_resolver() -> tf.distribute.cluster_resolver.ClusterResolver:
    """Where this worker's cluster is described: TF_CONFIG, else a SLURM job step."""
    if "TF_CONFIG" not in os.environ and "SLURM_PROCID" in os.environ:
        gpus = _gpus_on_node()
        if gpus == 0:
            # The resolver shares GPUs out to tasks and cannot share none (a zero range step):
            # on CPU nodes, give it one placeholder per task and let it set no CUDA devices.
            options = {"gpus_per_node": CPU_TASKS_PER_NODE_MAX, "gpus_per_task": 1,
                       "auto_set_gpu": False}  # fmt: skip
        else:
            options = {"gpus_per_node": gpus}
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(
            port_base=SLURM_PORT, **options
        )
        resolver.cluster_spec()  # sets the task type and id
        return resolver
    if "TF_CONFIG" in os.environ:
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as exc:
            raise ValueError(f"TF_CONFIG is not valid JSON: {exc}") from None
    return tf.distribute.cluster_resolver.TFConfigClusterResolver()


def _gpus_on_node() -> int | None:
    """GPUs for SlurmClusterResolver to share out, without starting TensorFlow's runtime: the
    devices SLURM made visible, none on a node without nvidia-smi (the resolver would fail
    running it), else None for the resolver to ask nvidia-smi."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    return 0 if shutil.which("nvidia-smi") is None else None


def is_chief(resolver: tf.distribute.cluster_resolver.ClusterResolver | None) -> bool:
    """Whether this process writes the run's files: the "chief" task, or worker 0 of a cluster
    without one (TensorFlow's rule), or the only process when there is no cluster."""
    if resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    jobs = resolver.cluster_spec().as_dict()
    return task_type is None or task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in jobs
    )  # fmt: skip


def strategy_is_chief(strategy: tf.distribute.Strategy) -> bool:
    return is_chief(getattr(strategy, "cluster_resolver", None))


class Consensus:
    """The same number on every worker. Workers must take the same decisions between epochs
    (their clocks and time budgets differ): one that stops alone leaves the others waiting
    forever in the next batch's all-reduce, and one that sets its own learning rate drifts away
    from the others' weights. Only a multi-worker strategy needs a collective for it."""

    def __init__(self, strategy: tf.distribute.Strategy):
        self._mean = None
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):

            @tf.function
            def mean(value):
                per_replica = strategy.run(lambda: tf.identity(value))
                return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)

            self._mean = mean

    def mean(self, value: float) -> float:
        """The mean of every worker's `value`."""
        if self._mean is None:
            return value
        return float(self._mean(tf.constant(value, tf.float32)))

    def any(self, flag: bool) -> bool:
        """True when any worker's `flag` is True."""
        return self.mean(1.0 if flag else 0.0) > 0.0
