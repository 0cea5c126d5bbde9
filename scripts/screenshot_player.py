"""Open the video player on a video, predict the whole video, and save a screenshot.

Run it under Xvfb to see the player as a person would:
    xvfb-run -a -s "-screen 0 1366x768x24" python scripts/screenshot_player.py out.png \
        [PROJECT VIDEO] [--train SECONDS] [--frame N]
Without PROJECT and VIDEO it builds the demo project and a video of its images (each shown for
a few frames); --train trains the project's model for that many seconds first (the player then
draws that model's keypoints; without a trained run it plays without predictions). It predicts
the whole video, shows the frame where the model is least sure (or frame N) and shoots the
whole screen.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QSettings, QTimer

from kpstudio.core.demo import build_demo_project
from kpstudio.core.project import Project
from kpstudio.gui.app import studio_application
from kpstudio.gui.main_window import MainWindow
from kpstudio.gui.video_player import open_video_player

FRAMES_PER_IMAGE = 3


def demo_video(project: Path, out: Path) -> Path:
    """The project's images as a 10 fps video, each for FRAMES_PER_IMAGE frames."""
    with Project.open(project, readonly=True) as p:
        paths = [p.image_path(r) for r in p.images()]
    first = cv2.imread(str(paths[0]))
    h, w = first.shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    for path in paths:
        frame = cv2.imread(str(path))
        for _ in range(FRAMES_PER_IMAGE):
            writer.write(frame)
    writer.release()
    return out


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    options = {}
    for name in ("--train", "--frame"):
        if name in sys.argv:
            options[name] = float(sys.argv[sys.argv.index(name) + 1])
            args.remove(sys.argv[sys.argv.index(name) + 1])
    seconds = options.get("--train")
    out = Path(args[0] if args else "kpstudio-player.png").absolute()
    tmp = Path(tempfile.mkdtemp(prefix="kpstudio-player-"))
    if len(args) >= 3:
        project, video = Path(args[1]), Path(args[2])
    else:
        project = tmp / "demo"
        build_demo_project(project)
        video = demo_video(project, tmp / "figures.avi")
    if seconds:
        subprocess.run([sys.executable, "-m", "kpstudio.cli", "train", str(project),
                        "--max-minutes", str(seconds / 60)], check=True)  # fmt: skip
    app = studio_application()
    win = MainWindow(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    win.show()
    win.open_project(project)
    player = open_video_player(win, video)

    def predict():
        if player.predictor is None and "loading" in player.model_label.text():
            QTimer.singleShot(500, predict)  # the model is still loading
            return
        if player.predictor is None:
            shoot()
            return
        player.predict_whole_video()
        player.analysis.ended.connect(lambda: QTimer.singleShot(200, least_sure))

    def least_sure():
        conf = player.stored.mean_confidence()
        player.seek(int(options.get("--frame", np.nanargmin(conf))))
        QTimer.singleShot(1000, shoot)

    def shoot():
        screen = player.screen()
        screen.grabWindow(0).save(str(out))
        frame = player.frameGeometry()
        print(f"saved {out}: player {frame.width()}×{frame.height()} at ({frame.x()}, "
              f"{frame.y()}), frame {player.current}, {len(player.view.markers)} keypoints "
              f"drawn; {player.message.text()}")  # fmt: skip
        app.quit()

    QTimer.singleShot(1500, predict)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
