"""train(): a plain function with progress and cancel callbacks (no Qt), used by the CLI and by
the studio's worker thread alike.

Custom loop rather than Model.fit: one loss for both architectures' outputs, a cancel check
between batches (a cancel takes effect within one batch), validation in original image pixels
every epoch, the best checkpoint kept by that error, and the same code under tf.distribute
strategies. Progress goes out as typed events (kpstudio.ml.events); the rules between epochs
(learning-rate schedule, early stopping, time budget) are the objects of kpstudio.ml.policies.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from kpstudio.core.runs import new_run_id, run_folder
from kpstudio.core.training_set import TrainingSet
from kpstudio.ml import checkpoint, losses
from kpstudio.ml.config import NO_AUGMENTATION, TrainConfig
from kpstudio.ml.dataset import load_letterboxed, training_dataset
from kpstudio.ml.evaluate import (
    evaluation_report,
    make_infer,
    mean_px_error,
    predict_letterboxed,
    preview_loader,
)
from kpstudio.ml.events import (
    BatchEnded,
    EpochEnded,
    Loading,
    TrainingEnded,
    TrainingEvent,
    TrainingStarted,
)
from kpstudio.ml.hints import random_hints
from kpstudio.ml.models import build_model, hinted, with_heatmaps
from kpstudio.ml.optimizer import make_optimizer
from kpstudio.ml.peak_reading import choose_for_run
from kpstudio.ml.planning import planned_config
from kpstudio.ml.policies import (
    EarlyStopping,
    EpochOutcome,
    LearningRateSchedule,
    TimeBudget,
    first_stop_reason,
    steps_to_amortise_validation,
)
from kpstudio.ml.strategy import Consensus, make_strategy, strategy_is_chief
from kpstudio.ml.topdown_training import TopDownTraining
from kpstudio.ml.warm_start import check_warm_start, load_warm_start
from kpstudio.ml.weight_layout import LayoutError, check_architecture

ProgressFn = Callable[[TrainingEvent], None]
# A better model is handed over (publish) at most this often: saving costs ~0.3 s, and the
# assisted loop's target is fresh suggestions within 30 s of a correction.
PUBLISH_INTERVAL_S = 10.0


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    status: str  # finished | stopped
    config: dict
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    model_path: Path | None = None  # None on a worker that is not the chief
    best_epoch: int | None = None
    notes: list[str] = field(default_factory=list)
    replicas: int = 1


class _Stop(Exception):
    pass


def train(
    data: TrainingSet, config: TrainConfig, on_progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None, run_dir: Path | None = None,
    resume: Path | None = None, refresh: Callable[[], TrainingSet | None] | None = None,
    publish: Callable[[Path, dict], None] | None = None,
) -> RunResult:  # fmt: skip
    """Train on a snapshot of a project's labels; returns the run (its folder holds the model).

    `on_progress` gets the events of kpstudio.ml.events; `should_stop` is asked before every
    batch. `resume`: a previous run's folder; training continues from its last checkpoint.
    `refresh()`: asked after every epoch; a new snapshot it returns (labels added or corrected
    meanwhile) is what the next epoch trains and validates on, with the model as it is.
    `publish(model_path, metrics)`: a better model is saved to the run's model file and handed
    over while training goes on (at most every PUBLISH_INTERVAL_S; Assist's suggestions).
    Under a multi-worker strategy only the chief writes files (config, checkpoint, model)."""
    started = time.monotonic()
    if len(data) == 0:
        raise ValueError("the project has no labeled images to train on")
    cfg = planned_config(config, data.fingerprint()).resolved()  # settings from the data
    try:  # what the model file would refuse to hold, refused before minutes of training
        check_architecture(cfg.arch, cfg.params, len(data.skeleton), cfg.input_size)
    except LayoutError as exc:
        raise ValueError(f"cannot train this model: {exc}") from exc
    report = on_progress or (lambda _: None)
    stop = should_stop or (lambda: False)
    train_idx, val_idx = data.indices("train"), data.indices("val")
    notes = list(data.notes) + list((cfg.plan or {}).get("notes", []))
    if len(train_idx) == 0:
        raise ValueError("every labeled image is in the val split; nothing to train on")
    if len(val_idx) == 0:
        notes.append("no labeled val images: the best checkpoint is chosen by train error")
        val_idx = train_idx
    run_id = run_dir.name if run_dir else new_run_id(cfg.arch)
    run_dir = run_dir or run_folder(data.project_folder, run_id)
    tf.keras.utils.set_random_seed(cfg.seed)
    # Before any other TensorFlow work: a multi-worker strategy sets up the collectives.
    strategy = make_strategy(cfg.strategy)
    chief = strategy_is_chief(strategy)
    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    report(Loading(0, len(data)))
    try:
        cache = load_letterboxed(data, cfg.input_size, should_stop=stop,
                                 progress=lambda d, t: report(Loading(d, t)))  # fmt: skip
    except InterruptedError:
        report(TrainingEnded("stopped", "stopped by the user while loading images"))
        return RunResult(run_id, run_dir, "stopped", cfg.to_dict(),
                         notes=[*notes, "stopped by the user while loading images"])  # fmt: skip
    k = len(data.skeleton)
    top_down = None
    if cfg.top_down and cfg.arch == "default":
        if cfg.strategy != "default":
            raise ValueError("top-down models train with the default strategy only for now")
        if cfg.params.get("hints"):
            raise ValueError("hints work with single-object models for now, not top-down ones")
        top_down = TopDownTraining(data, cache, (cfg.plan or {}).get("finder_size") or 0
                                   or cfg.input_size // 2, cfg.crop_size)  # fmt: skip
        crop = cfg.crop_size
        notes.append(f"top-down: a finder at {top_down.setup.finder_size} px proposes objects, "
                     f"the pose model sees {crop}×{crop} crops around each")  # fmt: skip
    else:
        crop = _crop_size(cfg, data, cache)
        cfg.crop_size = crop or 0  # recorded with the run: 0 means whole images
        several = data.several_objects_note()
        if several:
            notes.append(several)
    if crop and not top_down:
        notes.append(f"trained on {crop}×{crop} crops around the labels, "
                     f"predicting on whole {cfg.input_size}×{cfg.input_size} images")  # fmt: skip
    with strategy.scope():
        if top_down:  # one model holds the pose model and the finder: one set of weights
            model = top_down.build(k, cfg.params)
            train_model = model
        else:
            # With crops, one model of free input size serves both crops and whole images.
            model = build_model(cfg.arch, k, None if crop else cfg.input_size, **cfg.params)
            train_model = with_heatmaps(model) or model
        optimizer = make_optimizer(cfg.learning_rate)
        optimizer.build(model.trainable_variables)
    loss_fn = losses.for_architecture(cfg.arch, cfg.input_size, cfg.params.get("stride", 4))
    if cfg.warm_start:
        check_warm_start(cfg.warm_start, cfg.arch, cfg.params, data.skeleton.keypoints,
                         bool(top_down))  # fmt: skip
        if top_down:
            load_warm_start(cfg.warm_start, pose=top_down.pose, finder=top_down.finder)
        else:
            load_warm_start(cfg.warm_start, model=model)
        notes.append(f"started from the weights of {cfg.warm_start}")
    state = checkpoint.TrainingState()
    if resume is not None:
        state = checkpoint.restore(resume, model, optimizer)
        notes.append(f"resumed from {resume.name} at epoch {state.epoch}")

    replicas = strategy.num_replicas_in_sync
    global_batch = cfg.batch_size * replicas
    flip = data.skeleton.flip_permutation() if data.skeleton.flip_pairs else None

    def batches_for(train_idx, val_idx):
        """(endless batches, steps per epoch) over `train_idx`, `val_idx` validated after each."""
        if top_down:
            augment = cfg.augmentation if cfg.augment else NO_AUGMENTATION
            dataset = top_down.dataset(train_idx, global_batch, cfg.seed, augment, flip)
            objects = int(top_down.valid[train_idx].sum())
            # Its validation: the pose model on one crop per labeled val object.
            side = val_side = top_down.setup.crop
            val_inputs = int(top_down.valid[val_idx].sum())
        else:
            dataset = training_dataset(
                cache.subset(train_idx), global_batch, cfg.seed,
                cfg.augmentation if cfg.augment else None, flip, crop,
            )  # fmt: skip
            objects, side = len(train_idx), crop or cfg.input_size
            val_inputs, val_side = len(val_idx), cfg.input_size
        steps = max(math.ceil(objects / global_batch),
                    steps_to_amortise_validation(val_inputs, val_side, global_batch, side))
        return iter(strategy.experimental_distribute_dataset(dataset)), steps

    batches, steps_per_epoch = batches_for(train_idx, val_idx)
    jit = cfg.jit_compile and cfg.strategy == "default"

    top_down_loss = top_down and TopDownTraining.loss(model, cfg.params.get("stride", 4))
    uses_hints = hinted(model) is not None

    def replica_step(images, xy, weight, *finder_batch):
        with tf.GradientTape() as tape:
            if top_down:
                per_example = top_down_loss(images, xy, weight, *finder_batch)
            elif uses_hints:
                hints = random_hints(xy, weight)
                per_example = loss_fn(train_model([images, hints], training=True), xy, weight)
            else:
                per_example = loss_fn(train_model(images, training=True), xy, weight)
            loss = tf.reduce_sum(per_example) / global_batch
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function(jit_compile=jit)
    def single_step(*batch):
        return replica_step(*batch)

    @tf.function
    def distributed_step(batch):
        losses_ = strategy.run(replica_step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses_, axis=None)

    def step(batch):
        if cfg.strategy == "default":
            return single_step(*batch)
        return distributed_step(batch)

    infer = None if top_down else make_infer(model)
    preview = preview_loader(None if top_down else cfg.preview_image)

    def validate(indices) -> float:
        if top_down:
            return top_down.validate(indices)
        return float(mean_px_error(predict_letterboxed(infer, cache, indices), data, indices))

    schedule = LearningRateSchedule(cfg.learning_rate)
    budget = TimeBudget(cfg.max_minutes)
    early = EarlyStopping(cfg.patience, state.best_val_px, state.best_epoch)
    stop_rules = [early, budget]
    workers = Consensus(strategy)  # one schedule and one stop decision for all workers
    best_weights = model.get_weights() if state.best_weights is None else state.best_weights
    if cfg.warm_start and resume is None:
        # The weights it starts from are a candidate too ("epoch 0"): a run continued from a
        # model never returns one that does worse on val than that model (Assist's rounds
        # restart at the full learning rate, and one round's best can trail the last one's).
        early.best, early.best_epoch = validate(val_idx), 0
    status, reason = "finished", f"the {cfg.epochs} epochs are done"
    epoch_times: list[float] = []
    published = -math.inf
    report(TrainingStarted(replicas, global_batch, steps_per_epoch, cfg.epochs))
    budget.start(started, time.monotonic())
    try:
        for epoch in range(state.epoch + 1, cfg.epochs + 1):
            t_epoch = time.monotonic()
            progress = workers.mean(max(epoch / cfg.epochs, budget.progress(t_epoch)))
            optimizer.learning_rate.assign(schedule(epoch, progress))
            losses_sum = 0.0
            for b in range(steps_per_epoch):
                if stop():
                    raise _Stop
                loss = float(step(next(batches)))
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"the training loss became {loss} at epoch {epoch}; try a lower learning "
                        "rate"
                    )
                losses_sum += loss
                report(BatchEnded(epoch, cfg.epochs, b + 1, steps_per_epoch, loss))
            val_px = validate(val_idx)
            epoch_times.append(time.monotonic() - t_epoch)
            if early.update(epoch, val_px):
                best_weights = model.get_weights()
                if publish is not None and chief and (
                        time.monotonic() - published >= PUBLISH_INTERVAL_S):  # fmt: skip
                    published = time.monotonic()
                    interim = {"mean_px": val_px, "epoch": epoch, "interim": True}
                    saved = (_save_top_down(run_dir, top_down, model, cfg, data, interim, run_id)
                             if top_down else
                             _save_model(run_dir, model, cfg, data, interim, run_id))  # fmt: skip
                    publish(saved, interim)
            state.epoch, state.best_val_px, state.best_epoch = epoch, early.best, early.best_epoch
            state.best_weights = best_weights
            elapsed = time.monotonic() - started
            # The first epoch includes tracing: leave it out of the typical epoch time.
            typical = float(np.median(epoch_times[1:][-10:] or epoch_times))
            event = EpochEnded(
                epoch, cfg.epochs, losses_sum / steps_per_epoch, val_px, early.best,
                float(optimizer.learning_rate.numpy()), elapsed,
                budget.remaining(elapsed, (cfg.epochs - epoch) * typical),
                steps_per_epoch * global_batch / epoch_times[-1], preview(infer, cfg.input_size),
            )  # fmt: skip
            state.history.append(event.history_entry())
            report(event)
            if chief:
                checkpoint.maybe_save(run_dir, model, optimizer, state)
            # Workers of a cluster must train on the same data: labels follow on one process only.
            fresh = refresh() if refresh is not None and cfg.strategy == "default" else None
            if fresh is not None and len(fresh) and len(fresh.indices("train")):
                # New or corrected labels: the next epoch trains and validates on them. The
                # best val error so far was on other val images: the current weights become
                # the best, measured on the new ones.
                cache = load_letterboxed(fresh, cfg.input_size, should_stop=stop,
                                         known=(cache, data.paths))  # fmt: skip
                data = fresh
                if top_down:
                    top_down.replace_data(data, cache)
                train_idx = data.indices("train")
                val_idx = data.indices("val") if len(data.indices("val")) else train_idx
                batches, steps_per_epoch = batches_for(train_idx, val_idx)
                early.best, early.best_epoch, early.stale = validate(val_idx), epoch, 0
                best_weights = model.get_weights()
                notes.append(f"labels changed at epoch {epoch}: now {len(train_idx)} training "
                             f"and {len(data.indices('val'))} val images")  # fmt: skip
            why = first_stop_reason(stop_rules, EpochOutcome(epoch, val_px, progress, elapsed,
                                                             typical))  # fmt: skip
            if workers.any(why is not None):
                reason = why or "stopped with the other workers"
                notes.append(reason)
                break
    except _Stop:
        status, reason = "stopped", f"stopped by the user at epoch {state.epoch + 1}"
        notes.append(reason)
    report(TrainingEnded(status, reason))
    if chief:
        checkpoint.save(run_dir, model, optimizer, state)
    model.set_weights(best_weights)
    readings = None
    chosen = (choose_for_run(cfg, model, top_down, cache, data, train_idx, val_idx, notes)
              if cfg.arch == "default" and len(val_idx) else None)  # fmt: skip
    if chosen is not None:
        infer, readings = chosen
    if top_down:
        metrics = top_down.evaluate(val_idx)
    else:
        metrics = evaluation_report(predict_letterboxed(infer, cache, val_idx), data, val_idx)
    if readings:  # val mean px by heatmap reading (kpstudio.ml.peak_reading.label)
        metrics["px_by_reading"] = readings
    metrics["split"] = "val" if len(data.indices("val")) else "train"
    metrics["best_epoch"] = state.best_epoch  # 0: the model it started from was kept
    metrics["replicas"] = replicas
    if not chief:
        model_path = None
    elif top_down:
        model_path = _save_top_down(run_dir, top_down, model, cfg, data, metrics, run_id)
    else:
        model_path = _save_model(run_dir, model, cfg, data, metrics, run_id)
    return RunResult(run_id, run_dir, status, cfg.to_dict(), state.history, metrics, model_path,
                     state.best_epoch, notes, replicas)  # fmt: skip


def _crop_size(cfg: TrainConfig, data: TrainingSet, cache) -> int | None:
    """Crop side for training (the plan's, or the user's), or None for whole images."""
    if cfg.arch != "default" or not cfg.augment or not cfg.crop_size:
        return None
    size, crop = cfg.input_size, cfg.crop_size
    if crop % 32:
        raise ValueError(f"the crop size must be a multiple of 32, not {crop}")
    return crop if crop < size else None


def _save_top_down(run_dir, top_down, combined, cfg, data, metrics, run_id) -> Path:
    from kpstudio.ml.model_file import save_model_file

    pose, finder = top_down.fixed_models(len(data.skeleton), cfg.params, combined)
    return save_model_file(
        run_dir / "model.kpmodel", pose, arch=cfg.arch, params=cfg.params,
        input_size=top_down.setup.crop, skeleton=data.skeleton, metrics=metrics,
        extra={"run_id": run_id, "plan": cfg.plan, "overrides": cfg.overrides},
        finder=finder, top_down=top_down.setup.manifest(),
    )  # fmt: skip


def _save_model(run_dir, model, cfg, data, metrics, run_id) -> Path:
    from kpstudio.ml.model_file import save_model_file

    if model.input_shape[1] is None:  # trained on crops: the saved model has a fixed input
        fixed = build_model(cfg.arch, len(data.skeleton), cfg.input_size, **cfg.params)
        fixed.set_weights(model.get_weights())
        model = fixed

    return save_model_file(
        run_dir / "model.kpmodel", model, arch=cfg.arch, params=cfg.params,
        input_size=cfg.input_size, skeleton=data.skeleton, metrics=metrics,
        extra={"run_id": run_id, "plan": cfg.plan, "overrides": cfg.overrides},
    )  # fmt: skip

