"""The layer rules of DESIGN.md, checked by a tool and by what a fresh interpreter loads."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import REPO

HEAVY = ("PySide6", "pyqtgraph", "tensorflow", "keras")


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=str(__import__("pathlib").Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e .[test])")
    result = subprocess.run([exe], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    loaded = eval(out.stdout.strip().splitlines()[-1])
    return [m for m in HEAVY if m in loaded]


def test_core_imports_neither_qt_nor_tensorflow():
    modules = sorted(p.stem for p in (REPO / "kpstudio" / "core").glob("*.py"))
    code = "\n".join(f"import kpstudio.core.{m}" for m in modules)
    code += "\nimport kpstudio.core.formats"
    assert _loaded_after(code) == []


def test_cli_help_loads_neither_qt_nor_tensorflow():
    code = (
        "import contextlib, io, kpstudio.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        kpstudio.cli.main(['--help'])\n"
        "    except SystemExit:\n        pass"
    )
    assert _loaded_after(code) == []
