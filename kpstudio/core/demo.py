"""The demo project: synthetic images of a simple articulated figure with known keypoints.

Generated on the user's machine (no download): a stick figure with a head, a neck, two hands,
a hip and two feet, in random poses on textured backgrounds. About two thirds of the images come
pre-labeled with the exact keypoints, the rest are left for the user to label or predict.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from kpstudio.core.labelset import Visibility
from kpstudio.core.project import DB_NAME, Project
from kpstudio.core.skeleton import Skeleton

KEYPOINTS = ("head", "neck", "left_hand", "right_hand", "hip", "left_foot", "right_foot")
EDGES = (("head", "neck"), ("neck", "left_hand"), ("neck", "right_hand"), ("neck", "hip"),
         ("hip", "left_foot"), ("hip", "right_foot"))  # fmt: skip
FLIPS = (("left_hand", "right_hand"), ("left_foot", "right_foot"))
SIZE = (320, 240)  # width, height


def demo_skeleton() -> Skeleton:
    return Skeleton.create(KEYPOINTS, EDGES, FLIPS)


def render_figure(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One RGB image and its (7, 2) keypoints (pixel-corner convention)."""
    w, h = SIZE
    image = _background(rng, w, h)
    scale = rng.uniform(0.7, 1.1)
    neck = np.array([rng.uniform(0.35, 0.65) * w, rng.uniform(0.3, 0.45) * h])
    lean = rng.uniform(-0.35, 0.35)

    def limb(origin, angle, length):
        return origin + length * scale * np.array([np.sin(angle), np.cos(angle)])

    head = limb(neck, np.pi + lean, 28)
    hip = limb(neck, lean, 62)
    left_hand = limb(neck, rng.uniform(0.6, 2.4) + lean, 50)  # figure's left = image right
    right_hand = limb(neck, -rng.uniform(0.6, 2.4) + lean, 50)
    left_foot = limb(hip, rng.uniform(0.15, 0.7), 58)
    right_foot = limb(hip, -rng.uniform(0.15, 0.7), 58)
    points = np.stack([head, neck, left_hand, right_hand, hip, left_foot, right_foot])
    points[:, 0] = np.clip(points[:, 0], 2, w - 2)
    points[:, 1] = np.clip(points[:, 1], 2, h - 2)

    body = tuple(int(c) for c in rng.integers(20, 90, 3))
    thick = max(3, int(7 * scale))
    for a, b in EDGES:
        pa, pb = points[KEYPOINTS.index(a)], points[KEYPOINTS.index(b)]
        cv2.line(image, _px(pa), _px(pb), body, thick, cv2.LINE_AA, _SHIFT)
    cv2.circle(image, _px(head), int(14 * scale * 2**_SHIFT), body, -1, cv2.LINE_AA, _SHIFT)
    # Distinct hand/foot colours make left and right tell-able, as on a real animal's markings.
    marks = {"left_hand": (220, 60, 60), "right_hand": (60, 90, 220),
             "left_foot": (230, 150, 40), "right_foot": (40, 170, 120)}  # fmt: skip
    for name, colour in marks.items():
        radius = int((6 * scale + 2) * 2**_SHIFT)
        cv2.circle(image, _px(points[KEYPOINTS.index(name)]), radius, colour, -1, cv2.LINE_AA,
                   _SHIFT)  # fmt: skip
    return image, points


def build_demo_project(folder: str | Path, n_images: int = 36, seed: int = 7) -> dict:
    """Create (or reuse) the demo project in `folder`; returns its counts."""
    folder = Path(folder)
    if (folder / DB_NAME).exists():
        with Project.open(folder, readonly=True) as project:
            counts = project.counts()
            counts["keypoints"] = list(project.skeleton.keypoints)
            return counts
    rng = np.random.default_rng(seed)
    image_dir = folder / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    rows, truths = [], []
    for i in range(n_images):
        image, points = render_figure(rng)
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        assert ok, "PNG encoding of a generated image failed"
        path = image_dir / f"figure_{i:03d}.png"
        path.write_bytes(encoded.tobytes())
        rows.append((path, SIZE[0], SIZE[1], hashlib.sha256(encoded.tobytes()).hexdigest()))
        truths.append(points)
    with Project.create(folder, demo_skeleton(), seed=seed) as project:
        ids = project.add_images(rows)
        for image_id, points in list(zip(ids, truths, strict=True))[: n_images * 2 // 3]:
            project.set_labels(
                image_id,
                [(name, x, y, Visibility.VISIBLE) for name, (x, y) in zip(KEYPOINTS, points,
                                                                            strict=True)],
            )  # fmt: skip
        counts = project.counts()
        counts["keypoints"] = list(KEYPOINTS)
    return counts


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = rng.integers(150, 235, 3).astype(np.float32)
    small = rng.normal(0, 18, (h // 16 + 1, w // 16 + 1, 3)).astype(np.float32)
    texture = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 4, (h, w, 3)).astype(np.float32)
    return np.clip(base + texture + noise, 0, 255).astype(np.uint8)


_SHIFT = 4  # cv2 sub-pixel drawing: coordinates in 1/16 px


def _px(point: np.ndarray) -> tuple[int, int]:
    # cv2 puts pixel centres at integers; ours are at i + 0.5, hence the half-pixel shift.
    return (round((point[0] - 0.5) * 2**_SHIFT), round((point[1] - 0.5) * 2**_SHIFT))
