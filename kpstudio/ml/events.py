"""What train() reports while it runs: small frozen records, one type per kind of event.

No TensorFlow here: the studio's UI thread and the CLI's progress bar read these types. The
values are plain Python floats, ints, strings and tuples, so an event crosses threads as it is
(a queued Qt signal) and prints as JSON (`kpstudio train --json`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Loading:
    """Images decoded and letterboxed so far (once per run, before training)."""

    done: int
    total: int


@dataclass(frozen=True)
class TrainingStarted:
    """The model is built and the data is ready: the first batch comes next."""

    replicas: int  # devices (and machines) training in sync under the tf.distribute strategy
    global_batch: int
    batches_per_epoch: int
    epochs: int


@dataclass(frozen=True)
class BatchEnded:
    epoch: int
    epochs: int
    batch: int  # 1-based
    batches: int
    loss: float


@dataclass(frozen=True)
class Preview:
    """The model's prediction on the preview image, in that image's pixels."""

    image: str
    xy: tuple[tuple[float, float], ...]  # one (x, y) per keypoint
    confidence: tuple[float, ...]


@dataclass(frozen=True)
class EpochEnded:
    epoch: int
    epochs: int
    loss: float  # mean training loss over the epoch
    val_px: float  # mean px error on the val images (nan when none could be measured)
    best_val_px: float | None
    lr: float
    elapsed_s: float  # since train() started, loading included
    eta_s: float
    images_per_s: float
    preview: Preview | None = None

    def history_entry(self) -> dict:
        """The epoch as stored in the run's history (and its checkpoint)."""
        return {"epoch": self.epoch, "loss": self.loss, "val_px": self.val_px, "lr": self.lr,
                "seconds": round(self.elapsed_s, 2), "images_per_s": self.images_per_s}  # fmt: skip


@dataclass(frozen=True)
class TrainingEnded:
    """Training is over (the best weights are being evaluated and saved next)."""

    status: str  # finished | stopped
    reason: str  # why: the epochs ran out, early stopping, the budget, the user's Stop


TrainingEvent = Loading | TrainingStarted | BatchEnded | EpochEnded | TrainingEnded
