"""The project store's records and its error type (kept apart so the store's parts share
them without importing each other)."""

from __future__ import annotations

from dataclasses import dataclass

from kpstudio.core.labelset import Visibility


class ProjectError(ValueError):
    """A user-facing problem with a project (missing, corrupt, invalid edit, disk full)."""


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: str  # relative to the project folder, POSIX form
    width: int
    height: int
    sha256: str
    split: str
    status: str


@dataclass(frozen=True)
class Label:
    keypoint: str
    instance: int
    x: float  # NaN when absent
    y: float
    visibility: Visibility
    source: str
    updated: float
