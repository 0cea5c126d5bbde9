"""The video player with a model that finds several animals: the whole video is predicted with
every animal linked into a track (its slot and colour kept from frame to frame, also across a
Cancel and resume), and a frame added to the project stores every animal's prediction."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import test_video_player as player_tests  # noqa: E402
from test_video_player import FRAMES, WAIT_MS, open_player, seek_and_wait  # noqa: E402

from kpstudio.core.demo import demo_skeleton  # noqa: E402
from kpstudio.core.prediction_files import Prediction  # noqa: E402
from kpstudio.core.predictions import load_objects  # noqa: E402
from kpstudio.core.video_frames import probe_video  # noqa: E402
from kpstudio.gui.video_player_jobs import partial_predictions, predict_video_job  # noqa: E402

# The player tests' fixtures: a small clip, a tiny model file, the studio with run r1.
clip, model_file, with_model = player_tests.clip, player_tests.model_file, player_tests.with_model

K = len(demo_skeleton().keypoints)


def frame_index(image: np.ndarray) -> int:
    return round((float(image[:8].mean()) - 20) / 5)  # the clip's top band says it


def moving(i: int) -> np.ndarray:
    """The animal that walks right one pixel a frame (the clip's dot)."""
    return np.stack([8.0 + i + np.arange(K), 24.0 + np.arange(K)], axis=1)


STILL = np.stack([44.0 + np.arange(K), 4.0 + np.arange(K)], axis=1)  # animals have an extent


class TwoAnimals:
    """Duck-typed like a top-down Predictor: finds the walking animal and a still one on every
    frame, the more certain one first, as the real model returns them. Which is more certain
    changes half-way, so instance numbers alone would swap the animals' slots."""

    def __init__(self):
        self.manifest = {"top_down": {"crop_size": 32}, "input_size": 64}
        self.skeleton = demo_skeleton()

    def predict_instances(self, images, batch_size: int = 32):
        out = []
        for image in images:
            i = frame_index(image)
            found = [(moving(i), 0.9 if i < 20 else 0.6), (STILL, 0.8)]
            found.sort(key=lambda f: -f[1])
            out.append([Prediction(None, xy, np.full(K, 0.9), n, score)
                        for n, (xy, score) in enumerate(found)])  # fmt: skip
        return out


def run_job(info, start, before=None) -> object:
    got: list = []
    job = predict_video_job(info, None, TwoAnimals(), demo_skeleton().keypoints, "r1", start,
                            "tensorflow", got, before)  # fmt: skip
    job(lambda done, total: None, lambda: False)
    return partial_predictions(got, "r1")


def slot_of_moving(stored, f: int) -> int:
    (slot,) = [n for n in range(stored.instances) if np.isfinite(stored.score[f, n])
               and np.allclose(stored.xy[f, n], moving(f), atol=1e-3)]  # fmt: skip
    return slot


def test_every_animal_is_kept_in_its_own_slot_across_the_video_and_a_resume(clip):
    info = probe_video(clip)
    whole = run_job(info, 0)
    assert whole.frames == FRAMES and whole.instances == 2
    assert np.isfinite(whole.score).all()  # both animals on every frame
    slots = {slot_of_moving(whole, f) for f in range(FRAMES)}
    assert len(slots) == 1  # the walking animal keeps its slot when it stops being the surer one
    for f in (0, 25, FRAMES - 1):
        assert {round(float(p.score), 2) for p in whole.at(f)} == ({0.9, 0.8} if f < 20
                                                                   else {0.6, 0.8})  # fmt: skip

    # Stopped after frame 23, then resumed. By then the still animal is the surer one, so a
    # resumed run that did not go on tracking would give it the walking animal's slot.
    first = run_job(info, 0)
    first = type(first)(first.run_id, first.xy[:24], first.confidence[:24], first.score[:24])
    rest = run_job(info, 24, before=first)
    joined = first.extended(rest)
    assert joined.frames == FRAMES and joined.instances == 2
    assert {slot_of_moving(joined, f) for f in range(FRAMES)} == slots
    np.testing.assert_allclose(joined.xy, whole.xy)


def test_the_player_draws_every_animal_and_adds_a_frame_with_all_of_them(qtbot, with_model,
                                                                         clip):  # fmt: skip
    window = with_model
    player = open_player(qtbot, window, clip)
    qtbot.waitUntil(lambda: player.predictor is not None, timeout=WAIT_MS)
    player.predictor = TwoAnimals()  # the model the player uses for run r1
    player.source.set_predictor(player.predictor)
    player.predict_whole_video()
    qtbot.waitUntil(lambda: player.analysis is None, timeout=WAIT_MS)
    stored = player.stored
    assert stored.frames == FRAMES and stored.instances == 2
    seek_and_wait(qtbot, player, 30)
    assert len(player.drawn) == 2
    assert "predicted all" in player.message.text()

    doc = window.doc
    before = {r.id for r in doc.images()}
    with qtbot.waitSignal(doc.images_changed, timeout=WAIT_MS):
        player.add_frame()
    (record,) = [r for r in doc.images() if r.id not in before]
    objects = load_objects(doc.project, record.id, "r1")
    assert len(objects) == 2
    # The surer animal first: on frame 30 the still one (0.8) before the walking one (0.6).
    np.testing.assert_allclose(objects[0][0], STILL, atol=1e-3)
    np.testing.assert_allclose(objects[1][0], moving(30), atol=1e-3)
    assert record.status == "predicted"
