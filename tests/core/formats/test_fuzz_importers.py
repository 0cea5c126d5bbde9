"""Fuzzing the four importers with mutated real files (issue 11).

Each case mutates a seed from ../shared/peer-files, reads it with its importer and imports the
result into a copy of a project that already holds the seed: the outcome is success or a
LabelError / ProjectError naming the file, and a refused import leaves the store unchanged.
The same cases run longer in benchmarks/bench_fuzz.py --long.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import SHARED
from fuzzing import (
    CI_SETTINGS,
    Outcome,
    mutate_bytes,
    mutate_csv_text,
    mutate_json_file,
    mutate_lines,
    mutate_tree,
    store_dump,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from kpstudio.core.formats import read_labels
from kpstudio.core.labelset import LabelError
from kpstudio.core.project import DB_NAME, Project, ProjectError
from kpstudio.core.project_transfer import import_labelset

PEER = SHARED / "peer-files"
ERRORS = (LabelError, ProjectError)


class Seed:
    """One importer's seed: the files of a case (name → bytes), which one is read, the images
    folder, and a project that already holds the unmutated seed."""

    def __init__(
        self, fmt: str, files: dict[str, bytes], entry: str, images: Path | None, work: Path
    ):
        self.fmt, self.files, self.entry, self.images, self.work = fmt, files, entry, images, work
        self.counter = itertools.count()
        case = self.write(files)
        self.project = work / "base"
        with Project.create(self.project) as project:
            import_labelset(project, read_labels(fmt, case / entry, images))

    def write(self, files: dict[str, bytes]) -> Path:
        case = Path(tempfile.mkdtemp(prefix=f"{self.fmt}-", dir=self.work))
        for name, data in files.items():
            (case / name).parent.mkdir(parents=True, exist_ok=True)
            (case / name).write_bytes(data)
        return case

    def run(self, outcome: Outcome, files: dict[str, bytes], strict: bool = True) -> None:
        case = self.write(files)
        target = case / "project"
        target.mkdir()
        shutil.copyfile(self.project / DB_NAME, target / DB_NAME)

        def attempt():
            labels = read_labels(self.fmt, case / self.entry, self.images)
            with Project.open(target) as project:
                import_labelset(project, labels)

        names = [case] + ([self.images] if self.images is not None else [])
        outcome.check(attempt, names, lambda: store_dump(target / DB_NAME), ERRORS, strict)
        shutil.rmtree(case, ignore_errors=True)


def peer_file(*parts: str) -> Path:
    path = PEER.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"peer file {path} is not present")
    return path


def coco_seed(work: Path) -> Seed:
    file = peer_file("coco", "mmpose-fly", "test_fly.json")
    return Seed("coco", {"c.json": file.read_bytes()}, "c.json", file.parent, work)


def labelme_seed(work: Path) -> Seed:
    file = peer_file("labelme", "primitives", "primitives.json")
    return Seed("labelme", {"l.json": file.read_bytes()}, "l.json", file.parent, work)


def dlc_seed(work: Path) -> Seed:
    file = peer_file("deeplabcut", "sleap-testdata", "labeled-data", "video", "dlc_testdata.csv")
    return Seed("dlc", {"d.csv": file.read_bytes()}, "d.csv", file.parent, work)


def yolo_seed(work: Path) -> Seed:
    folder = peer_file("yolo-pose", "datumaro-yolov8_pose")
    ok, jpg = cv2.imencode(".jpg", np.full((30, 40, 3), 128, np.uint8))
    files = {
        "data.yaml": (folder / "data.yaml").read_bytes(),
        "labels/train/1.txt": (folder / "labels" / "train" / "1.txt").read_bytes(),
        "images/train/1.jpg": jpg.tobytes(),  # the seed names its images but ships none
    }
    return Seed("yolo", files, "data.yaml", None, work)


def coco_case(draw, seed: Seed) -> dict[str, bytes]:
    return {"c.json": mutate_json_file(draw, seed.files["c.json"])}


def labelme_case(draw, seed: Seed) -> dict[str, bytes]:
    return {"l.json": mutate_json_file(draw, seed.files["l.json"])}


def dlc_case(draw, seed: Seed) -> dict[str, bytes]:
    return {"d.csv": mutate_csv_text(draw, seed.files["d.csv"].decode())}


_ALIASES = "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"


def yolo_case(draw, seed: Seed) -> dict[str, bytes]:
    files = dict(seed.files)
    part = draw(st.sampled_from(["yaml", "yaml", "labels", "bytes", "aliases"]))
    if part == "yaml":
        tree = mutate_tree(draw, yaml.safe_load(files["data.yaml"]))
        text = yaml.safe_dump(tree, allow_unicode=True) if _yaml_safe(tree) else "{"
        files["data.yaml"] = text.encode("utf-8", "surrogatepass")
    elif part == "labels":
        files["labels/train/1.txt"] = mutate_lines(draw, files["labels/train/1.txt"].decode())
    elif part == "bytes":
        name = draw(st.sampled_from(sorted(files)))
        files[name] = mutate_bytes(draw, files[name])
    else:
        files["data.yaml"] = _ALIASES.encode() + files["data.yaml"] + b"train: *b\n"
    return files


def _yaml_safe(tree: object) -> bool:
    try:
        yaml.safe_dump(tree)
        return True
    except (yaml.YAMLError, RecursionError, ValueError):
        return False


SEEDS = {"coco": coco_seed, "labelme": labelme_seed, "dlc": dlc_seed, "yolo": yolo_seed}
CASES = {"coco": coco_case, "labelme": labelme_case, "dlc": dlc_case, "yolo": yolo_case}
CI_EXAMPLES = {"coco": 150, "labelme": 100, "dlc": 100, "yolo": 100}


@pytest.fixture(scope="module")
def work(shared_dir, tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("fmt", SEEDS)
def test_mutated_files_are_imported_or_refused_cleanly(fmt, work):
    folder = work / fmt
    folder.mkdir()
    seed = SEEDS[fmt](folder)
    outcome = Outcome(fmt)

    @settings(CI_SETTINGS, max_examples=CI_EXAMPLES[fmt])
    @given(st.data())
    def case(data):
        seed.run(outcome, CASES[fmt](data.draw, seed))

    case()
    assert outcome.counts["cases"] >= CI_EXAMPLES[fmt]
    # Both outcomes happen: the mutations are neither all harmless nor all fatal.
    assert outcome.counts["refused"] > 0
