"""kpstudio: a desktop studio for keypoint localisation (label, train, review, export)."""

from __future__ import annotations

from importlib import resources as _resources
from pathlib import Path

__version__ = "0.1.0"


def resource_path(name: str) -> Path:
    """Path of a file shipped under resources/ (works from a wheel, a checkout or a frozen app)."""
    try:
        candidate = Path(str(_resources.files("kpstudio.resources") / name))
        if candidate.exists():
            return candidate
    except ModuleNotFoundError:
        pass
    candidate = Path(__file__).resolve().parent.parent / "resources" / name
    if candidate.exists():
        return candidate
    raise FileNotFoundError(f"kpstudio resource {name!r} is missing from this installation")
