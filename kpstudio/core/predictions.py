"""Stored model predictions: one row per keypoint of each object found, per run and image
(instance 0 is the model's most certain object; a single-object model stores only it).

Predicting every unlabeled image once and keeping the answers lets the studio rank images by
how unsure the model is and overlay a prediction without loading the model again.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from kpstudio.core.prediction_files import Prediction, write_predictions
from kpstudio.core.project import Project, ProjectError


def _keypoint_ids(project: Project) -> list[int]:
    return [project._keypoint_id(name) for name in project.skeleton.keypoints]


def _keypoint_index(project: Project) -> dict[int, int]:
    """Keypoint id → its position in the skeleton."""
    return {kp_id: k for k, kp_id in enumerate(_keypoint_ids(project))}


def _as_arrays(rows, index: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(keypoint id, x, y, confidence) rows → xy (K, 2) and confidence (K,), NaN where a
    keypoint has no row (or one of a keypoint since deleted)."""
    xy = np.full((len(index), 2), np.nan)
    confidence = np.full(len(index), np.nan)
    for kp_id, x, y, conf in rows:
        if kp_id in index:
            xy[index[kp_id]] = (x, y)
            confidence[index[kp_id]] = conf
    return xy, confidence


def store_predictions(project: Project, run_id: str, results: dict) -> None:
    """Write `results` of `run_id`, replacing that run's rows for those images; unlabeled images
    become 'predicted'. `results` maps an image id to one object (xy (K, 2), confidence (K,))
    or to a list of objects (a model that finds several: instance 0 first). Written in short
    transactions (Project.write_in_turns; each image's answer whole), so a label edit of the
    user waits a few milliseconds, not the ~10 s that 100,000 answers take in one."""
    ids = _keypoint_ids(project)
    rows: dict[int, list[tuple]] = {}  # checked in full before anything is written
    for image_id, found in results.items():
        objects = found if isinstance(found, list) else [found]
        rows[int(image_id)] = []
        for instance, (xy, confidence) in enumerate(objects):
            xy, confidence = np.asarray(xy, np.float64), np.asarray(confidence, np.float64)
            if xy.shape != (len(ids), 2) or confidence.shape != (len(ids),):
                raise ValueError(
                    f"a prediction for image {image_id} must have {len(ids)} keypoints, "
                    f"not xy {xy.shape} and confidence {confidence.shape}"
                )
            rows[int(image_id)].extend(
                (run_id, int(image_id), instance, kp_id, float(x), float(y), float(conf))
                for kp_id, (x, y), conf in zip(ids, xy, confidence)
                if np.isfinite(x) and np.isfinite(y) and np.isfinite(conf)
            )

    def write(conn, chunk) -> None:
        conn.executemany(
            "DELETE FROM predictions WHERE run_id = ? AND image_id = ?",
            [(run_id, i) for i in chunk],
        )
        conn.executemany(
            "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)",
            [row for i in chunk for row in rows[i]],
        )
        project.refresh_status(conn, chunk)  # unlabeled → predicted, by the store's rule

    project.write_in_turns(list(rows), write)


def newest_predicting_run(project: Project, image_id: int) -> str | None:
    """The newest run with a stored prediction for this image, or None."""
    row = project.query(
        "SELECT p.run_id FROM predictions p JOIN runs r ON r.id = p.run_id "
        "WHERE p.image_id = ? ORDER BY r.created DESC LIMIT 1",
        (image_id,),
    )
    return row[0][0] if row else None


def load_prediction(
    project: Project, image_id: int, run_id: str | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """(xy (K, 2) with NaN where missing, confidence (K,)) of `run_id`, or of the newest run
    with a prediction for this image when `run_id` is None; None when there is none."""
    if run_id is None:
        run_id = newest_predicting_run(project, image_id)
        if run_id is None:
            return None
    rows = project.query(
        "SELECT keypoint_id, x, y, confidence FROM predictions "
        "WHERE run_id = ? AND image_id = ? AND instance = 0",
        (run_id, image_id),
    )
    if not rows:
        return None
    return _as_arrays(rows, _keypoint_index(project))


def load_objects(project: Project, image_id: int, run_id: str) -> list[tuple]:
    """Every object `run_id` found on the image, instance 0 first: [(xy (K, 2), confidence
    (K,)), ...] ([] when it has no prediction there)."""
    rows = project.query(
        "SELECT instance, keypoint_id, x, y, confidence FROM predictions "
        "WHERE run_id = ? AND image_id = ? ORDER BY instance",
        (run_id, image_id),
    )
    index = _keypoint_index(project)
    return [_as_arrays([row[1:] for row in group], index)
            for _, group in itertools.groupby(rows, key=lambda row: row[0])]  # fmt: skip


def lowest_confidence(
    project: Project, run_id: str, unlabeled_only: bool = False
) -> list[tuple[int, float]]:
    """(image id, mean confidence) of every image `run_id` predicted, least sure first;
    with `unlabeled_only`, only images that have no labels yet (what to label next)."""
    where = " AND i.status IN ('unlabeled', 'predicted')" if unlabeled_only else ""
    rows = project.query(
        "SELECT p.image_id, AVG(p.confidence) AS c FROM predictions p "
        f"JOIN images i ON i.id = p.image_id WHERE p.run_id = ?{where} "
        "GROUP BY p.image_id ORDER BY c ASC, p.image_id ASC",
        (run_id,),
    )
    return [(int(i), float(c)) for i, c in rows]


def predicted_image_count(project: Project, run_id: str) -> int:
    """How many images `run_id` has a stored prediction for."""
    return project.query(
        "SELECT COUNT(DISTINCT image_id) FROM predictions WHERE run_id = ?", (run_id,)
    )[0][0]


def stored_predictions(project: Project, run_id: str) -> list[Prediction]:
    """Every object `run_id` found, in image order (instance 0 first): path relative to the
    project folder (as stored, so the file stays valid when the project moves), xy (K, 2) in
    original image pixels with NaN where a keypoint has no stored point, confidence (K,)."""
    index = _keypoint_index(project)
    rows = project.query(
        "SELECT i.id, i.path, p.instance, p.keypoint_id, p.x, p.y, p.confidence "
        "FROM predictions p JOIN images i ON i.id = p.image_id WHERE p.run_id = ? "
        "ORDER BY i.id, p.instance",
        (run_id,),
    )
    return [
        Prediction(path, *_as_arrays([row[3:] for row in group], index), instance)
        for (_, path, instance), group in itertools.groupby(rows, key=lambda row: row[:3])
    ]


def export_stored_predictions(project: Project, run_id: str, out: str | os.PathLike) -> int:
    """Write the stored predictions of `run_id` to `out` (.csv or .json, see
    kpstudio.core.prediction_files; with instance columns when the run found several objects
    on an image); returns the number of images written."""
    preds = stored_predictions(project, run_id)
    if not preds:
        raise ProjectError(f"run {run_id} has no stored predictions to export; predict the "
                           "unlabeled images with it first")  # fmt: skip
    write_predictions(preds, project.skeleton, out,
                      objects=any(p.instance > 0 for p in preds))  # fmt: skip
    return len({p.path for p in preds})
