"""The rules train() follows between epochs, as small named objects it composes (the roles of
Keras' LearningRateScheduler and EarlyStopping callbacks, and a time budget), so each rule can
be read, tested and changed alone.

No TensorFlow here: plain arithmetic on what an epoch measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

# At most this share of a run's time goes to validating after each epoch. An epoch was one pass
# over the training images, so a few labels made epochs of one step, and validating after each
# took 40 % of the run (openfield with 4 labels: 150 steps in 45 s; 228 with 6 steps an epoch).
VALIDATION_SHARE = 0.2
# A training step's cost per input pixel against validation's (forward only, and batched for
# inference): measured on openfield with 4 labels on the 2-core CPU, a 32-crop step of 128 px
# took 1.4× as long as validating 20 frames of 320 px, 3.9× as many pixels.
STEP_COST_PER_PIXEL = 5.6


@dataclass(frozen=True)
class EpochOutcome:
    """What the stopping rules look at when an epoch ends."""

    epoch: int
    val_px: float
    progress: float  # share of the schedule done when the epoch started (epochs or time)
    elapsed_s: float  # since train() started, loading included
    typical_epoch_s: float


class StopRule(Protocol):
    def stop_reason(self, outcome: EpochOutcome) -> str | None:
        """Why training should stop after this epoch, or None to go on."""


@dataclass(frozen=True)
class LearningRateSchedule:
    """Linear warm-up over the first epochs, then cosine decay over the run's progress (epochs
    or time budget, whichever is further along), so a 10-minute run anneals as fully as a
    300-epoch one."""

    base: float
    warmup_epochs: int = 3
    final_fraction: float = 0.02  # of the base rate, at the end of the schedule

    def __call__(self, epoch: int, progress: float) -> float:
        if epoch <= self.warmup_epochs:
            return self.base * epoch / self.warmup_epochs
        progress = min(max(progress, 0.0), 1.0)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.base * (self.final_fraction + (1 - self.final_fraction) * cosine)


class TimeBudget:
    """At most `minutes` of training: the schedule's progress follows the clock, and training
    stops before an epoch that would not fit. None: no budget."""

    def __init__(self, minutes: float | None):
        self.minutes = minutes
        self.seconds = minutes * 60.0 if minutes else None
        self._train_s = 1.0
        self._loop_started = 0.0

    def start(self, started: float, loop_started: float) -> None:
        """Clock readings (time.monotonic) when train() began and when its first epoch began:
        the time for epochs is the budget less loading and building."""
        if self.seconds:
            self._train_s = max(self.seconds - (loop_started - started), 1.0)
        self._loop_started = loop_started

    def progress(self, now: float) -> float:
        """The share of the training time used by `now` (0 without a budget)."""
        return (now - self._loop_started) / self._train_s if self.seconds else 0.0

    def remaining(self, elapsed_s: float, estimate_s: float) -> float:
        """An estimate of the time left, capped by the budget."""
        return min(estimate_s, max(0.0, self.seconds - elapsed_s)) if self.seconds else estimate_s

    def stop_reason(self, outcome: EpochOutcome) -> str | None:
        if self.seconds and outcome.elapsed_s + outcome.typical_epoch_s > self.seconds:
            return f"stopped at the {self.minutes:g}-minute budget"
        return None


class EarlyStopping:
    """Keeps the best val error and stops after `patience` epochs without a better one, but
    only in the second half of the schedule: a plateau while the learning rate is still high
    is mostly that rate, not convergence (a 10-minute run stopped at minute 5 on 2.20 px where
    it reached 1.85 px in full)."""

    def __init__(self, patience: int, best: float | None = None, best_epoch: int | None = None,
                 from_progress: float = 0.5):  # fmt: skip
        self.patience, self.from_progress = patience, from_progress
        self.best, self.best_epoch = best, best_epoch
        self.stale = 0  # epochs since the best one

    def update(self, epoch: int, val_px: float) -> bool:
        """Take an epoch's val error; True when it is the best so far."""
        if math.isfinite(val_px) and (self.best is None or val_px < self.best):
            self.best, self.best_epoch, self.stale = val_px, epoch, 0
            return True
        self.stale += 1
        return False

    def stop_reason(self, outcome: EpochOutcome) -> str | None:
        if self.stale >= self.patience and outcome.progress >= self.from_progress:
            return f"stopped early: no better val error for {self.stale} epochs"
        return None


def first_stop_reason(rules: list[StopRule], outcome: EpochOutcome) -> str | None:
    """The first rule, in order, that says stop."""
    return next((r for r in (rule.stop_reason(outcome) for rule in rules) if r), None)


def steps_to_amortise_validation(val_images: int, val_side: int, batch: int,
                                 train_side: int) -> int:  # fmt: skip
    """The fewest training steps per epoch for which validating `val_images` frames of
    `val_side` px costs at most VALIDATION_SHARE of the epoch, by the pixels each one computes
    on (deterministic, unlike a timing: a seed gives the same run on any machine)."""
    validation = val_images * val_side * val_side
    step = STEP_COST_PER_PIXEL * batch * train_side * train_side
    return max(1, math.ceil(validation * (1 - VALIDATION_SHARE) / VALIDATION_SHARE / step))
