"""The packaging files agree on one id and pass the freedesktop / AppStream validators."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from conftest import REPO

PACKAGING = REPO / "packaging"
APP_ID = "io.github.kpstudio.KpStudio"


def test_desktop_and_metainfo_share_one_id():
    desktop = (PACKAGING / f"{APP_ID}.desktop").read_text(encoding="utf-8")
    assert f"Icon={APP_ID}" in desktop
    root = ET.parse(PACKAGING / f"{APP_ID}.metainfo.xml").getroot()
    assert root.findtext("id") == APP_ID
    assert root.find("launchable").text == f"{APP_ID}.desktop"


@pytest.mark.parametrize("tool, args", [
    ("desktop-file-validate", [f"{APP_ID}.desktop"]),
    ("appstreamcli", ["validate", "--no-net", f"{APP_ID}.metainfo.xml"]),
])  # fmt: skip
def test_validators_pass(tool, args):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (Debian: desktop-file-utils / appstream)")
    result = subprocess.run([tool, *args], cwd=PACKAGING, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
