"""The skeleton: ordered keypoint names, edges, left/right pairs for flipping, colours."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kpstudio.core.limits import MAX_KEYPOINTS, MAX_NAME_LENGTH
from kpstudio.core.regular_files import quote

# A qualitative palette that stays readable on photos; cycled when there are more keypoints.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000", "#aaffc3", "#808000",
    "#ffd8b1", "#000075", "#a9a9a9", "#ffe119",
)  # fmt: skip

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class SkeletonError(ValueError):
    """A skeleton definition a user gave is invalid; the message says what and where."""


def normalise_name(name: str) -> str:
    """Keypoint names compare after Unicode NFC, trimming and collapsing inner whitespace."""
    if not isinstance(name, str):
        raise SkeletonError(f"keypoint name {name!r} is not text")
    return " ".join(unicodedata.normalize("NFC", name).split())


# Characters refused in names: controls (a terminal escape sequence printed by `kpstudio info`
# recolours or rewrites the user's terminal), format characters (right-to-left overrides make a
# name read as another), surrogates and line/paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _check_name(name: str) -> None:
    if len(name) > MAX_NAME_LENGTH:
        raise SkeletonError(
            f"keypoint name {quote(name)} is {len(name)} characters long; the limit is "
            f"{MAX_NAME_LENGTH}"
        )
    bad = next((c for c in name if unicodedata.category(c) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        raise SkeletonError(
            f"keypoint name {quote(name)} holds the control character U+{ord(bad):04X}; names "
            "are plain text"
        )


@dataclass(frozen=True)
class Skeleton:
    """Immutable, validated skeleton; build it with `Skeleton.create`."""

    keypoints: tuple[str, ...]
    edges: tuple[tuple[str, str], ...] = ()
    flip_pairs: tuple[tuple[str, str], ...] = ()
    colors: tuple[str, ...] = field(default=())

    @classmethod
    def create(
        cls,
        keypoints: Iterable[str],
        edges: Iterable[Sequence[str]] = (),
        flip_pairs: Iterable[Sequence[str]] = (),
        colors: Iterable[str] | None = None,
        *,
        check_names: bool = True,
    ) -> Skeleton:
        """A validated skeleton. `check_names` refuses control characters and over-long names
        (off only for a project store written before they were refused)."""
        raw_names = tuple(keypoints)
        if len(raw_names) > MAX_KEYPOINTS:
            raise SkeletonError(
                f"{len(raw_names):,} keypoints is more than kpstudio's limit of {MAX_KEYPOINTS}"
            )
        names = tuple(normalise_name(k) for k in raw_names)
        if not names:
            raise SkeletonError("a skeleton needs at least one keypoint")
        seen: dict[str, str] = {}
        for raw, name in zip(raw_names, names, strict=True):
            if not name:
                raise SkeletonError(f"keypoint name {raw!r} is empty")
            if check_names:
                _check_name(name)
            folded = name.casefold()
            if folded in seen:
                raise SkeletonError(f"keypoint name {name!r} appears twice (as {seen[folded]!r})")
            seen[folded] = name
        edge_list = _pairs(names, edges, "edge")
        flip_list = _pairs(names, flip_pairs, "left/right pair")
        used: set[str] = set()
        for a, b in flip_list:
            for n in (a, b):
                if n in used:
                    raise SkeletonError(f"keypoint {n!r} is in more than one left/right pair")
                used.add(n)
        color_list = tuple(colors) if colors is not None else ()
        if not color_list:
            color_list = tuple(PALETTE[i % len(PALETTE)] for i in range(len(names)))
        if len(color_list) != len(names):
            raise SkeletonError(f"{len(color_list)} colours given for {len(names)} keypoints")
        for c in color_list:
            if not _COLOR.match(c):
                raise SkeletonError(f"colour {c!r} is not of the form #rrggbb")
        return cls(names, edge_list, flip_list, tuple(c.lower() for c in color_list))

    def __len__(self) -> int:
        return len(self.keypoints)

    def index(self, name: str) -> int:
        """Position of a keypoint, found by its normalised name."""
        try:
            return self.keypoints.index(normalise_name(name))
        except ValueError:
            raise SkeletonError(
                f"unknown keypoint {quote(name)}; the skeleton has {', '.join(self.keypoints)}"
            ) from None

    def flip_permutation(self) -> list[int]:
        """Index map that swaps left/right pairs, as used by horizontal-flip augmentation."""
        perm = list(range(len(self.keypoints)))
        for a, b in self.flip_pairs:
            ia, ib = self.index(a), self.index(b)
            perm[ia], perm[ib] = ib, ia
        return perm

    def to_dict(self) -> dict:
        return {
            "keypoints": list(self.keypoints),
            "edges": [list(e) for e in self.edges],
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "colors": list(self.colors),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Skeleton:
        return cls.create(
            data["keypoints"], data.get("edges", ()), data.get("flip_pairs", ()),
            data.get("colors") or None,
        )  # fmt: skip


def _pairs(names: tuple[str, ...], pairs: Iterable[Sequence[str]], what: str):
    out: list[tuple[str, str]] = []
    seen: set[frozenset[str]] = set()
    for pair in pairs:
        if len(pair) != 2:
            raise SkeletonError(f"{what} {pair!r} must name exactly two keypoints")
        a, b = (normalise_name(p) for p in pair)
        for n in (a, b):
            if n not in names:
                raise SkeletonError(f"{what} {a}-{b} names unknown keypoint {n!r}")
        if a == b:
            raise SkeletonError(f"{what} {a}-{b} joins a keypoint to itself")
        key = frozenset((a, b))
        if key in seen:
            raise SkeletonError(f"{what} {a}-{b} is given twice")
        seen.add(key)
        out.append((a, b))
    return tuple(out)


def parse_pairs(text: str | None) -> list[tuple[str, str]]:
    """Parse the CLI form 'a-b,b-c' or 'l_eye:r_eye' into pairs (separator '-' or ':')."""
    if not text:
        return []
    pairs = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        sep = ":" if ":" in item else "-"
        parts = item.split(sep)
        if len(parts) != 2:
            raise SkeletonError(f"cannot read pair {item!r}; write it as a:b")
        pairs.append((parts[0], parts[1]))
    return pairs
