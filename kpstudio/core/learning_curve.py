"""Will more labels help? Val error against the number of labeled images, fitted and forecast.

The points come from the runs history (each finished or stopped run: its val mean px error and
the number of labeled images its plan saw, `config["plan"]["fingerprint"]["images"]`; not a
run from a model that kept that model, best epoch 0, which measured no model of its labels) and
from
`kpstudio learning-curve --train-subsets` (short runs on nested subsets of the train images,
kept in `<project>/learning_curve.json`). Several runs with the same number of labels keep the
lowest error: the curve asks what the labels allow, not what a short or failed setting gave.

The fit is the power law of learning curves, err(n) = a·n^(−b) + c, where c is the error no
number of labels removes (label noise, the model's limit). For a fixed c the law is a line in
log-log space, log(err − c) = log a − b·log n, solved by least squares; c is searched on a
grid between 0 and just under the lowest error seen, keeping the c whose curve is closest to
the points in relative terms (squared log ratio: errors span orders of magnitude, and in px the
first few points alone would decide). With fewer than four points there is too little to tell
c from b, and c = 0 (a plain a·n^(−b)).

The first labels are often not on the law: until the model finds the animal at all its error is
a different regime (openfield: 37 px at 8 labels, 6.5 at 16, then a gentle slope to ~2 px), and
a power law through those points plunges towards 0. So `fit_learning_curve` (what forecasts
use) chooses where the curve starts from the data: with five or more points it fits each later
start without the last point, keeps the start whose fit predicts that last point best, and
refits from there with every point. No Qt, no TensorFlow.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kpstudio.core.formats.files import write_text

SUBSETS_FILE = "learning_curve.json"
MIN_POINTS_FOR_FLOOR = 4  # three parameters need a fourth point to be checked against
_FLOOR_STEPS = 200
SAME_MISS = 0.001  # log ratio: fits missing the last point within 0.1 % of the best tie
MAX_LABELS = 10_000_000  # a forecast past this says "not by labels", not a number


@dataclass(frozen=True)
class PowerLaw:
    a: float
    b: float
    c: float
    points: int  # how many points it was fitted on

    def __call__(self, n) -> np.ndarray:
        return self.a * np.power(np.asarray(n, dtype=np.float64), -self.b) + self.c

    def labels_for(self, target_px: float) -> float | None:
        """The number of labels at which the curve reaches `target_px` (None: never, the
        floor c is at or above it, more labels do not lower the error, or the curve falls so
        slowly that it takes more than MAX_LABELS)."""
        if self.b <= 0 or self.a <= 0 or target_px <= self.c:
            return None
        log_n = (math.log(self.a) - math.log(target_px - self.c)) / self.b  # no overflow
        return float(math.exp(log_n)) if log_n <= math.log(MAX_LABELS) else None

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "c": self.c, "points": self.points}


def fit_power_law(n, err) -> PowerLaw:
    """Fit err(n) = a·n^(−b) + c (c = 0 with fewer than four points); see the module doc.
    Needs two points with different n and finite, positive errors."""
    n = np.asarray(n, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    keep = np.isfinite(n) & np.isfinite(err) & (n > 0) & (err > 0)
    n, err = n[keep], err[keep]
    if len(np.unique(n)) < 2:
        raise ValueError("a learning curve needs val errors at two or more numbers of labels")
    floors = [0.0]
    if len(n) >= MIN_POINTS_FOR_FLOOR:
        floors = list(np.linspace(0.0, 0.999 * float(err.min()), _FLOOR_STEPS))
    best: tuple[float, PowerLaw] | None = None
    log_n = np.log(n)
    design = np.stack([np.ones_like(log_n), -log_n], axis=1)
    for c in floors:
        (log_a, b), *_ = np.linalg.lstsq(design, np.log(err - c), rcond=None)
        law = PowerLaw(float(math.exp(log_a)), float(b), float(c), len(n))
        residual = float(np.sum(np.log(law(n) / err) ** 2))
        if best is None or residual < best[0]:
            best = (residual, law)
    return best[1]


def fit_learning_curve(n, err) -> PowerLaw:
    """fit_power_law from the start the data supports (see the module doc): points before it are
    a regime the law does not describe. Needs what fit_power_law needs."""
    pts = best_per_count(zip(n, err))
    if len(pts) < MIN_POINTS_FOR_FLOOR + 1:
        return fit_power_law(n, err)
    last_n, last_err = pts[-1]
    misses = []
    for start in range(len(pts) - MIN_POINTS_FOR_FLOOR):  # each fit keeps ≥ 4 points
        head = pts[start:-1]
        law = fit_power_law([p[0] for p in head], [p[1] for p in head])
        misses.append(abs(math.log(float(law(last_n)) / last_err)))
    # The start that predicts it best; of ties (a curve on the law throughout), the earliest.
    start = next(i for i, m in enumerate(misses) if m <= min(misses) + SAME_MISS)
    kept = pts[start:]
    return fit_power_law([p[0] for p in kept], [p[1] for p in kept])


@dataclass(frozen=True)
class Forecast:
    labels_now: int
    error_now: float | None  # the lowest val error at the most labels seen
    target_px: float
    labels_needed: float | None  # on the fitted curve; None: not reachable by labels alone
    law: PowerLaw | None

    @property
    def more_labels(self) -> int | None:
        if self.labels_needed is None:
            return None
        return max(0, math.ceil(self.labels_needed) - self.labels_now)

    def sentence(self) -> str:
        if self.law is None:
            return ("not enough runs for a learning curve yet: it needs val errors at two or "
                    "more numbers of labels (train again after labeling more, or run "
                    "`kpstudio learning-curve --train-subsets`)")  # fmt: skip
        if self.error_now is not None and self.error_now <= self.target_px:
            return f"the val error ({self.error_now:.2f} px) already meets {self.target_px:g} px"
        if self.more_labels is None:
            if self.law.c >= self.target_px:
                why = f"levels off near {self.law.c:.2f} px"
            elif self.law.b <= 0:
                why = "does not fall"
            else:
                why = f"falls too slowly (b = {self.law.b:.2g})"
            return (f"more labels alone are unlikely to reach {self.target_px:g} px: the "
                    f"fitted curve {why}")  # fmt: skip
        return (f"about {self.more_labels} more labels to reach {self.target_px:g} px "
                f"({self.labels_now} now, err ≈ {self.law.a:.3g}·n^-{self.law.b:.2f} + "
                f"{self.law.c:.2f})")  # fmt: skip

    def to_dict(self) -> dict:
        return {"labels_now": self.labels_now, "error_now": self.error_now,
                "target_px": self.target_px, "labels_needed": self.labels_needed,
                "more_labels": self.more_labels,
                "fit": self.law.to_dict() if self.law else None,
                "sentence": self.sentence()}  # fmt: skip


def best_per_count(points) -> list[tuple[int, float]]:
    """(n, err) pairs → the lowest finite err for each n, sorted by n."""
    best: dict[int, float] = {}
    for n, err in points:
        if n and err is not None and math.isfinite(err) and err > 0:
            best[int(n)] = min(err, best.get(int(n), math.inf))
    return sorted(best.items())


def forecast(points, target_px: float, labels_now: int | None = None) -> Forecast:
    """Fit the curve to (n, err) points and say how many labels reach `target_px`."""
    pts = best_per_count(points)
    now = labels_now if labels_now is not None else (pts[-1][0] if pts else 0)
    error_now = pts[-1][1] if pts else None
    if len(pts) < 2:
        return Forecast(now, error_now, target_px, None, None)
    law = fit_learning_curve([p[0] for p in pts], [p[1] for p in pts])
    return Forecast(now, error_now, target_px, law.labels_for(target_px), law)


def run_points(runs) -> list[tuple[int, float]]:
    """(labeled images, val mean px) of each run that trained to an end (RunRecords)."""
    out = []
    for run in runs:
        if run.status not in ("finished", "stopped"):
            continue
        images = ((run.config.get("plan") or {}).get("fingerprint") or {}).get("images")
        err = run.metrics.get("mean_px")
        # A run from a model that kept that model (its epoch 0) measured no model trained on
        # its labels: the error belongs to the earlier run's point, not to this label count.
        kept_start = run.metrics.get("best_epoch") == 0
        on_val = run.metrics.get("split", "val") == "val"
        if images and err is not None and on_val and not kept_start:
            out.append((int(images), float(err)))
    return out


def read_subset_points(project_folder: str | Path) -> list[tuple[int, float]]:
    """The points of the last `--train-subsets` run ([] when there is none or it is damaged:
    the runs history still gives a curve)."""
    path = Path(project_folder) / SUBSETS_FILE
    try:
        data = json.loads(path.read_text())
        return [(int(p["labels"]), float(p["mean_px"])) for p in data["points"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def write_subset_points(project_folder: str | Path, points: list[dict]) -> Path:
    """Keep the subset runs' points ({"labels", "mean_px", ...}) beside the store: they are
    measurements, not settings, and need no lock on the project."""
    path = Path(project_folder) / SUBSETS_FILE
    write_text(path, json.dumps({"points": points}, indent=2))
    return path


def project_points(project) -> list[tuple[int, float]]:
    """Every point of a project's curve, the runs history and the subset runs, best per n."""
    from kpstudio.core.runs import list_runs  # runs imports the store; this module need not

    return best_per_count(run_points(list_runs(project)) + read_subset_points(project.folder))
