"""tf.distribute strategies by name: one device, the GPUs (or devices) of one machine, or
several machines (configured through TF_CONFIG, as TensorFlow documents)."""

from __future__ import annotations

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        # Without GPUs, mirror over the logical CPU devices (tests split the CPU in two).
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
