"""Resumable training state in a run folder: last weights, optimizer slots, epoch, history and
the best weights so far. Written atomically, at most every SAVE_EVERY_S seconds while training
and always at the end, so a crash loses at most that much training."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The seed model's state is ~0.8 GB: saving it often would eat its training time.
SAVE_EVERY_S = 300.0
STATE_FILE = "checkpoint.npz"


@dataclass
class TrainingState:
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best_val_px: float | None = None
    best_epoch: int | None = None
    best_weights: list[np.ndarray] | None = None
    saved_at: float = 0.0


def maybe_save(run_dir: Path, model, optimizer, state: TrainingState) -> None:
    if time.monotonic() - state.saved_at >= SAVE_EVERY_S:
        save(run_dir, model, optimizer, state)


def save(run_dir: Path, model, optimizer, state: TrainingState) -> None:
    arrays = {}
    for i, w in enumerate(model.get_weights()):
        arrays[f"w{i}"] = w
    for i, v in enumerate(optimizer.variables):
        arrays[f"o{i}"] = np.asarray(v.numpy())
    for i, w in enumerate(state.best_weights or []):
        arrays[f"b{i}"] = w
    meta = {"epoch": state.epoch, "history": state.history, "best_val_px": state.best_val_px,
            "best_epoch": state.best_epoch}  # fmt: skip
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    tmp = run_dir / (STATE_FILE + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, run_dir / STATE_FILE)
    state.saved_at = time.monotonic()


def restore(run_dir: Path, model, optimizer) -> TrainingState:
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir} holds no training checkpoint to resume from")
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        n_w = len(model.get_weights())
        model.set_weights([data[f"w{i}"] for i in range(n_w)])
        for i, v in enumerate(optimizer.variables):
            if f"o{i}" in data:
                v.assign(data[f"o{i}"])
        best = [data[f"b{i}"] for i in range(n_w)] if "b0" in data else None
    return TrainingState(meta["epoch"], meta["history"], meta["best_val_px"],
                         meta["best_epoch"], best)  # fmt: skip
