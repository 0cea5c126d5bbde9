"""Training benchmark: the seed regressor vs the default heatmap model on one real data set.

Imports a COCO keypoint file into a fresh temporary project (the project's default split),
takes one training snapshot and trains `seed` then `default` on it, each for the same time
budget at its own default settings. Prints a row per model: parameters, input size, training
images/s, epochs, val error in original pixels (mean, median, PCK@0.05 of the bbox diagonal,
PCK@5 px), inference ms/image at batch 1 and 32 (letterbox included), and the training GFLOP/s
reached against this CPU's measured matmul peak. Then the targets, PASS/FAIL: the default
trains ≥ 10× more images/s than the seed at the seed's 64×64 input (a synthetic step-time probe
of the same loss and optimizer step as train.py), is ≥ 5× more accurate, runs ≤ 20 ms/image at
batch 1, and reaches ≤ 3.5 px mean error and PCK@5px ≥ 0.8 (the accuracy target assumes
--minutes 10).

Then many keypoints: training images/s of the real pipeline (tf.data augmentation and crops,
the default model, its loss and Adam step) on synthetic data with 4, 32 and 68 keypoints at the
same input and crop size, measured in interleaved rounds so a busy machine slows all alike;
target: 68 keypoints ≥ 0.5× the 4-keypoint figure. `--keypoints-only` runs just that.

    python benchmarks/bench_train.py [--minutes 10] [--dataset ../shared/datasets/dlc_openfield_mouse]
                                     [--seed 0] [--json OUT.json] [--probe-seconds 4]
                                     [--keypoints-only] [--keypoint-input 320] [--keypoint-crop 160]
"""  # noqa: E501

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kpstudio.core.formats import read_labels  # noqa: E402
from kpstudio.core.image_reader import read_image  # noqa: E402
from kpstudio.core.project import Project  # noqa: E402
from kpstudio.core.project_transfer import import_labelset  # noqa: E402
from kpstudio.core.training_set import TrainingSet, snapshot  # noqa: E402
from kpstudio.ml import losses  # noqa: E402
from kpstudio.ml.config import DEFAULT_LEARNING_RATE, Augmentation, TrainConfig  # noqa: E402
from kpstudio.ml.dataset import Letterboxed, training_dataset  # noqa: E402
from kpstudio.ml.evaluate import mean_px_error  # noqa: E402
from kpstudio.ml.events import EpochEnded  # noqa: E402
from kpstudio.ml.flops import measure_matmul_flops, training_flops  # noqa: E402
from kpstudio.ml.models import build_model, with_heatmaps  # noqa: E402
from kpstudio.ml.optimizer import make_optimizer  # noqa: E402
from kpstudio.ml.predictor import Predictor  # noqa: E402
from kpstudio.ml.train import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "dlc_openfield_mouse"
ARCHS = ("seed", "default")
KEYPOINT_COUNTS = (4, 32, 68)
SKIP_EPOCHS = 2  # the first epochs include tracing and warm-up: left out of images/s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="budget per model")
    parser.add_argument(
        "--dataset",
        type=Path,
        default=DEFAULT_DATASET,
        help="folder with annotations.json (COCO keypoints) and its images",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (TrainConfig.seed)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--probe-seconds",
        type=float,
        default=4.0,
        help="timed seconds per synthetic 64×64 throughput probe",
    )
    parser.add_argument("--keypoints-only", action="store_true",
                        help="only the 4 / 32 / 68 keypoint training throughput")  # fmt: skip
    parser.add_argument("--keypoint-input", type=int, default=320,
                        help="letterboxed input side of the keypoint throughput")  # fmt: skip
    parser.add_argument("--keypoint-crop", type=int, default=160,
                        help="its training crop side (0: the whole input)")  # fmt: skip
    parser.add_argument("--keypoint-rounds", type=int, default=3)
    args = parser.parse_args()

    scaling = keypoint_scaling(args.keypoint_input, args.keypoint_crop, args.probe_seconds,
                               args.keypoint_rounds)  # fmt: skip
    if args.keypoints_only:
        name, ok, detail = _keypoint_check(scaling)
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
        if args.json:
            args.json.write_text(json.dumps({"keypoint_scaling": scaling}, indent=1))
        return

    with tempfile.TemporaryDirectory(prefix="kpstudio-bench-train-") as tmp:
        with Project.create(Path(tmp) / "project") as project:
            import_labelset(project, read_labels("coco", args.dataset / "annotations.json"))
            data = snapshot(project)
        train_idx, val_idx = data.indices("train"), data.indices("val")
        k = len(data.skeleton)
        print(
            f"training benchmark: {args.dataset.name}, {len(data)} images × {k} keypoints "
            f"({len(train_idx)} train / {len(val_idx)} val), {args.minutes:g} min per model, "
            f"seed {args.seed}",
            flush=True,
        )
        images = [read_image(data.paths[i]) for i in (list(val_idx) + list(train_idx))[:32]]
        results, rows = {}, []
        for arch in ARCHS:
            config = TrainConfig(arch=arch, max_minutes=args.minutes, seed=args.seed)
            results[arch] = result = train(data, config, on_progress=_progress_printer(arch))
            print(
                f"  {arch}: {result.status}, {len(result.history)} epochs, best epoch "
                f"{result.best_epoch}; {'; '.join(result.notes) or 'no notes'}",
                flush=True,
            )
            rows.append(_row(arch, result, Predictor.from_file(result.model_path), images))

        print("measuring the matmul peak and the 64×64 training throughput ...", flush=True)
        peak = measure_matmul_flops()
        for row in rows:
            row["gflops"] = row["train_flops_per_image"] * row["images_per_s"] / 1e9
            row["peak_fraction"] = row["gflops"] * 1e9 / peak
        probe = {
            "seed@32": _step_throughput("seed", k, 64, 32, args.probe_seconds),
            "default@16": _step_throughput("default", k, 64, 16, args.probe_seconds),
            "default@32": _step_throughput("default", k, 64, 32, args.probe_seconds),
        }
        baseline = _mean_position_error(data, train_idx, val_idx)

    _print_table(rows)
    seed, default = rows
    best_default = max(probe["default@16"], probe["default@32"])
    speedup = best_default / probe["seed@32"]
    accuracy_ratio = seed["mean_px"] / default["mean_px"]
    checks = [
        (
            "default ≥ 10× the seed's training images/s at 64×64",
            speedup >= 10,
            f"{best_default:.0f} vs {probe['seed@32']:.0f} img/s = {speedup:.1f}×",
        ),
        (
            "default val mean error ≥ 5× lower than the seed's",
            accuracy_ratio >= 5,
            f"{default['mean_px']:.2f} vs {seed['mean_px']:.2f} px = {accuracy_ratio:.1f}×",
        ),
        (
            "default ≤ 20 ms/image at batch 1",
            default["ms_batch1"] <= 20,
            f"{default['ms_batch1']:.1f} ms",
        ),
        (
            "default mean val error ≤ 3.5 px and PCK@5px ≥ 0.8",
            default["mean_px"] <= 3.5 and default["pck_5px"] >= 0.8,
            f"{default['mean_px']:.2f} px, PCK@5px {default['pck_5px']:.2f} "
            f"(budget {args.minutes:g} min; the target is set for 10)",
        ),
    ]
    print(
        f"\nmatmul peak (float32, 2048²): {peak / 1e9:.0f} GFLOP/s; training images/s is the "
        f"median over epochs after the first {SKIP_EPOCHS} (their time includes the per-epoch "
        "val pass); ms/image includes the letterbox of a 640×480 image"
    )
    print(
        "synthetic 64×64 train-step throughput (random data, train.py's loss and Adam step): "
        + ", ".join(f"{name} {v:.0f} img/s" for name, v in probe.items())
    )
    print(
        f"predict-the-mean-position baseline (train-split mean per keypoint) on val: "
        f"{baseline:.2f} px"
    )
    checks.append(_keypoint_check(scaling))
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    if args.json:
        report = {
            "dataset": str(args.dataset),
            "minutes": args.minutes,
            "seed": args.seed,
            "images": {"train": len(train_idx), "val": len(val_idx)},
            "keypoints": k,
            "peak_gflops": peak / 1e9,
            "mean_position_baseline_px": baseline,
            "throughput_64": probe,
            "keypoint_scaling": scaling,
            "models": rows,
            "checks": [{"name": n, "pass": bool(ok), "detail": d} for n, ok, d in checks],
            "histories": {arch: r.history for arch, r in results.items()},
        }
        args.json.write_text(json.dumps(report, indent=1))
        print(f"written to {args.json}")


def _progress_printer(arch: str):
    def report(event) -> None:
        if isinstance(event, EpochEnded) and (event.epoch == 1 or event.epoch % 10 == 0):
            print(
                f"  {arch:7s} epoch {event.epoch:4d}  {event.elapsed_s:7.1f} s  "
                f"val {event.val_px:7.2f} px",
                flush=True,
            )

    return report


def _row(arch: str, result, predictor: Predictor, images: list[np.ndarray]) -> dict:
    history = result.history
    rates = [h["images_per_s"] for h in history[SKIP_EPOCHS:]] or [
        h["images_per_s"] for h in history
    ]
    m = result.metrics
    return {
        "model": arch,
        "params": predictor.model.count_params(),
        "input_size": predictor.input_size,
        "images_per_s": statistics.median(rates),
        "epochs": len(history),
        "mean_px": m["mean_px"],
        "median_px": m["median_px"],
        "pck_0.05": m["pck@0.05"],
        "pck_5px": m["pck@5.0px"],
        "ms_batch1": _ms_per_image(lambda: predictor.predict_array(images[0]), 1, 30),
        "ms_batch32": _ms_per_image(lambda: predictor.predict_arrays(images), len(images), 5),
        # The default model trains on crops: count the FLOPs of what it really trained on.
        "train_input": result.config.get("crop_size") or predictor.input_size,
        "train_flops_per_image": training_flops(
            build_model(
                arch, len(predictor.skeleton), result.config["crop_size"], **result.config["params"]
            )
            if result.config.get("crop_size")
            else predictor.model
        ),
        "few_epochs": len(history) <= SKIP_EPOCHS,
    }


def _ms_per_image(call, n_images: int, repeats: int) -> float:
    for _ in range(3):  # warm-up: tracing, thread pools
        call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000 / n_images


def _step_throughput(arch: str, k: int, size: int, batch: int, seconds: float) -> float:
    """Training images/s of train.py's step (same loss, Adam, tf.function) on random data."""
    tf.keras.utils.set_random_seed(0)
    model = build_model(arch, k, size)
    train_model = with_heatmaps(model) or model
    optimizer = make_optimizer(DEFAULT_LEARNING_RATE[arch])
    optimizer.build(model.trainable_variables)
    loss_fn = losses.for_architecture(arch, size)

    @tf.function
    def step(images, xy, weight):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(loss_fn(train_model(images, training=True), xy, weight)) / batch
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    images = tf.random.uniform((batch, size, size, 3), 0.0, 255.0)
    xy = tf.random.uniform((batch, k, 2), 0.1 * size, 0.9 * size)
    weight = tf.ones((batch, k))
    for _ in range(3):
        float(step(images, xy, weight))
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        float(step(images, xy, weight))  # train.py also reads the loss back every step
        steps += 1
    return steps * batch / (time.perf_counter() - t0)


def keypoint_scaling(size: int, crop: int, seconds: float, rounds: int) -> dict:
    """Training images/s at 4, 32 and 68 keypoints: train.py's pipeline and step on synthetic
    letterboxed images, the keypoints scattered over a 100-px object. Interleaved rounds, the
    median per count, so load from other processes falls on every count alike."""
    what = f"{crop}-px crops" if crop else "whole images"
    print(f"training images/s by keypoint count ({size}-px input, {what}, batch 16) ...",
          flush=True)  # fmt: skip
    steps = {k: _pipeline_step(k, size, crop or None) for k in KEYPOINT_COUNTS}
    rates = {k: [] for k in KEYPOINT_COUNTS}
    for _ in range(rounds):
        for k, step in steps.items():
            rates[k].append(_rate(step, 16, seconds))
    median = {k: statistics.median(v) for k, v in rates.items()}
    for k in KEYPOINT_COUNTS:
        print(f"  {k:3d} keypoints: {median[k]:6.1f} img/s  (rounds: "
              f"{', '.join(f'{r:.1f}' for r in rates[k])})")  # fmt: skip
    return {"input": size, "crop": crop, "batch": 16, "images_per_s": median, "rounds": rates,
            "ratio_68_to_4": median[68] / median[4]}  # fmt: skip


def _keypoint_check(scaling: dict) -> tuple:
    rate = scaling["images_per_s"]
    return ("training img/s at 68 keypoints ≥ 0.5× that at 4 (same input)",
            scaling["ratio_68_to_4"] >= 0.5,
            f"{rate[68]:.1f} vs {rate[4]:.1f} img/s = {scaling['ratio_68_to_4']:.2f}×")  # fmt: skip


def _pipeline_step(k: int, size: int, crop: int | None):
    rng = np.random.default_rng(k)
    n, batch = 64, 16
    centre = rng.uniform(0.3 * size, 0.7 * size, (n, 1, 2))
    xy = (centre + rng.uniform(-50, 50, (n, k, 2))).astype(np.float32)
    images = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    cache = Letterboxed(images, xy, np.ones((n, k), np.float32), [None] * n)
    flip = list(range(k))
    flip[0], flip[1] = 1, 0  # one left/right pair, as most skeletons have
    batches = iter(training_dataset(cache, batch, 0, Augmentation(), flip, crop))
    tf.keras.utils.set_random_seed(0)
    model = build_model("default", k, None if crop else size)
    train_model = with_heatmaps(model)
    optimizer = make_optimizer(DEFAULT_LEARNING_RATE["default"])
    optimizer.build(model.trainable_variables)
    loss_fn = losses.for_architecture("default", size)

    @tf.function
    def step(images, xy, weight):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(loss_fn(train_model(images, training=True), xy, weight)) / batch
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    def run():
        float(step(*next(batches)))

    for _ in range(3):
        run()
    return run


def _rate(run, batch: int, seconds: float) -> float:
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        run()
        steps += 1
    return steps * batch / (time.perf_counter() - t0)


def _mean_position_error(data: TrainingSet, train_idx, val_idx) -> float:
    val_idx = val_idx if len(val_idx) else train_idx
    mean_xy = np.nanmean(
        np.where(data.visibility[train_idx, :, None] > 0, data.xy[train_idx], np.nan), axis=0
    )
    pred = np.broadcast_to(mean_xy, (len(val_idx), *mean_xy.shape))
    return mean_px_error(pred, data, val_idx)


def _print_table(rows: list[dict]) -> None:
    head = (
        f"\n{'model':8s}{'params':>11s}{'input':>6s}{'train':>6s}{'img/s':>8s}{'epochs':>7s}"
        f"{'mean px':>9s}{'median':>8s}{'PCK.05':>7s}{'PCK5px':>7s}{'ms b1':>7s}"
        f"{'ms b32':>7s}{'GFLOP/s':>8s}{'%peak':>6s}"
    )
    print(head)
    print("-" * (len(head) - 1))
    for r in rows:
        flag = "*" if r["few_epochs"] else " "
        print(
            f"{r['model']:8s}{r['params']:11,d}{r['input_size']:6d}{r['train_input']:6d}"
            f"{r['images_per_s']:7.1f}"
            f"{flag}{r['epochs']:7d}{r['mean_px']:9.2f}{r['median_px']:8.2f}"
            f"{r['pck_0.05']:7.2f}{r['pck_5px']:7.2f}{r['ms_batch1']:7.1f}"
            f"{r['ms_batch32']:7.2f}{r['gflops']:8.1f}{100 * r['peak_fraction']:5.0f}%"
        )
    print("input: the model's input side; train: the side it trained on (crops for default)")
    if any(r["few_epochs"] for r in rows):
        print(f"* {SKIP_EPOCHS} epochs or fewer: images/s includes the warm-up epochs")


if __name__ == "__main__":
    main()
