"""A snapshot of a project's labels for training: plain arrays, detached from the store.

Training runs in another thread (the studio) or another process, while the user keeps
labeling; it works on this frozen copy, never on the live project. No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kpstudio.core.fingerprint import Fingerprint, fingerprint
from kpstudio.core.project import Project
from kpstudio.core.skeleton import Skeleton


@dataclass
class TrainingSet:
    skeleton: Skeleton
    project_folder: Path
    image_ids: list[int]
    paths: list[Path]  # absolute
    sizes: np.ndarray  # (N, 2) width, height
    xy: np.ndarray  # (N, K, 2) float32 original pixels, NaN where absent
    visibility: np.ndarray  # (N, K) int8: 0 absent, 1 occluded, 2 visible
    split: list[str]  # "train" / "val" per image
    notes: list[str] = field(default_factory=list)  # what the user should know about the data
    # The labels' fingerprint over every instance (the plan's input); None: from instance 0.
    label_fingerprint: Fingerprint | None = None
    # Every labeled instance (M = most instances on one image; padding has visibility 0):
    # what a top-down model trains on. None: instance 0 only (xy, visibility).
    objects_xy: np.ndarray | None = None  # (N, M, K, 2) float32, NaN where absent
    objects_visibility: np.ndarray | None = None  # (N, M, K) int8

    def objects(self) -> tuple[np.ndarray, np.ndarray]:
        """(xy (N, M, K, 2), visibility (N, M, K)) of every labeled instance of each image."""
        if self.objects_xy is None:
            return self.xy[:, None], self.visibility[:, None]
        return self.objects_xy, self.objects_visibility

    def __len__(self) -> int:
        return len(self.image_ids)

    def indices(self, split: str) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.split) if s == split], dtype=np.int64)

    def subset(self, indices) -> TrainingSet:
        idx = list(indices)
        return TrainingSet(
            self.skeleton, self.project_folder, [self.image_ids[i] for i in idx],
            [self.paths[i] for i in idx], self.sizes[idx], self.xy[idx], self.visibility[idx],
            [self.split[i] for i in idx], list(self.notes), self.label_fingerprint,
            None if self.objects_xy is None else self.objects_xy[idx],
            None if self.objects_visibility is None else self.objects_visibility[idx],
        )  # fmt: skip

    def several_objects_note(self) -> str | None:
        """What a single-object model misses on this data (None when every image holds one)."""
        if self.objects_visibility is None:
            return None
        multi = int(((self.objects_visibility > 0).any(axis=-1).sum(axis=1) > 1).sum())
        if not multi:
            return None
        return (f"{multi} image(s) hold several objects; a single-object model trains on the "
                "first of each (instance 0) and predicts one object per image")

    def fingerprint(self) -> Fingerprint:
        """The fingerprint the training plan is made from: every labeled instance of the
        project when the snapshot recorded it, else the instances held here."""
        if self.label_fingerprint is not None:
            return self.label_fingerprint
        images = ((w, h, [(xy, v)]) for (w, h), xy, v in zip(self.sizes, self.xy, self.visibility))
        return fingerprint(self.skeleton.keypoints, images, len(self.skeleton.flip_pairs))


def snapshot(project: Project) -> TrainingSet:
    """Every labeled, readable image of the project: its first instance (xy, visibility) and
    every labeled instance (objects()).

    A single-instance model trains on the first instance of each image (the user is told when
    images hold more); a top-down model trains on every one."""
    skeleton = project.skeleton
    if skeleton is None:
        raise ValueError(f"project {project.folder} has no skeleton: nothing to train")
    k = len(skeleton)
    ids, paths, sizes, xys, vis, split = [], [], [], [], [], []
    labeled_images = []  # every labeled instance, for the fingerprint
    objects = []
    for record in project.images():
        if record.status not in ("partial", "done"):
            continue
        instances = project.instances(record.id)
        if not instances or not instances[0].labeled().any():
            continue
        labeled_images.append((record.width, record.height,
                               [(i.xy, i.visibility) for i in instances]))  # fmt: skip
        ids.append(record.id)
        paths.append(project.image_path(record))
        sizes.append((record.width, record.height))
        xys.append(instances[0].xy.astype(np.float32))
        vis.append(instances[0].visibility)
        objects.append([i for i in instances if i.labeled().any()])
        split.append(record.split)
    notes = []
    m = max((len(o) for o in objects), default=1)
    objects_xy = np.full((len(objects), m, k, 2), np.nan, dtype=np.float32)
    objects_vis = np.zeros((len(objects), m, k), dtype=np.int8)
    for n, found in enumerate(objects):
        for j, inst in enumerate(found):
            objects_xy[n, j], objects_vis[n, j] = inst.xy, inst.visibility
    return TrainingSet(
        skeleton, project.folder, ids, paths,
        np.array(sizes, dtype=np.int64).reshape(-1, 2),
        np.array(xys, dtype=np.float32).reshape(-1, k, 2),
        np.array(vis, dtype=np.int8).reshape(-1, k), split, notes,
        fingerprint(skeleton.keypoints, labeled_images, len(skeleton.flip_pairs)) if ids else None,
        objects_xy, objects_vis,
    )  # fmt: skip


def labels_signature(project: Project) -> tuple:
    """A cheap fingerprint of the labels' state (count, latest edit, sum of positions): it
    changes whenever a label is added, moved, deleted or changes split, so a long training run
    can ask between epochs whether to take a fresh snapshot."""
    (row,) = project.query(
        "SELECT COUNT(*), MAX(updated), TOTAL(x) + TOTAL(y) FROM labels")  # fmt: skip
    (splits,) = project.query("SELECT group_concat(split, '') FROM images "
                              "WHERE status IN ('partial', 'done')")  # fmt: skip
    return (*row, hash(splits[0]))


def label_follower(open_store, since: tuple | None = None):
    """refresh() for a training run: a new snapshot when the labels changed since the last
    look (a cheap labels_signature query first; the snapshot only when it differs), else None.
    `open_store()` gives a store handle for the calling thread; `since`: the signature the run's
    own snapshot had (None: the first call only takes note)."""
    seen = [since]

    def refresh():
        with open_store() as store:
            now = labels_signature(store)
            if seen[0] is None or now == seen[0]:
                seen[0] = now
                return None
            seen[0] = now
            return snapshot(store)

    return refresh
