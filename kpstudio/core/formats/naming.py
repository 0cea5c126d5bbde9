"""Left/right pairs guessed from keypoint names, for sources that do not store flip pairs.

COCO, DeepLabCut and labelme files carry no flip information, yet flip augmentation needs it, and
almost every skeleton spells its sides in the names: ``left_eye``/``right_eye``, ``leftear``,
``l_hand``/``r_hand``, ``LeftFoot``, or a side letter as its own word as in the fly skeleton's
``eyeL``/``forelegR1``. A pair is only made when the partner name really exists, so a stray
``L`` (``L5_vertebra``) costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from kpstudio.core.skeleton import normalise_name

# "left"/"right" need no boundary after them: names such as "leftear" have none.
_SIDE_WORD = re.compile(r"left|right", re.IGNORECASE)
# Words of a name: separators, camelCase humps and digit runs all split it ("forelegR1" →
# "foreleg", "R", "1"); an all-capital run is one word unless a lowercase letter follows.
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def infer_flip_pairs(names: Iterable[str]) -> list[tuple[str, str]]:
    """(left, right) pairs whose names differ only by their side; case-insensitive.

    Each keypoint ends up in at most one pair; pairs come in the order of the left keypoint.
    """
    names = [normalise_name(n) for n in names]
    by_key = {n.casefold(): n for n in names}
    used: set[str] = set()
    pairs: list[tuple[str, str]] = []
    for name in names:
        if name in used:
            continue
        for candidate in _right_versions(name):
            partner = by_key.get(candidate.casefold())
            if partner is not None and partner != name and partner not in used:
                pairs.append((name, partner))
                used.update((name, partner))
                break
    return pairs


def _right_versions(name: str) -> list[str]:
    """Every spelling of `name` with one left marker turned into its right counterpart."""
    out = []
    for m in _SIDE_WORD.finditer(name):
        at = m.start()
        # A side word starts the name, follows a non-letter, or is a camelCase hump; not the
        # tail of another word ("bright", "upright").
        word_start = at == 0 or not name[at - 1].isalpha() or name[at].isupper()
        if word_start and m.group().casefold() == "left":
            out.append(name[: m.start()] + _same_case("right", m.group()) + name[m.end() :])
    for m in _WORD.finditer(name):
        if m.group() in ("l", "L"):
            out.append(name[: m.start()] + ("r" if m.group() == "l" else "R") + name[m.end() :])
    return out


def _same_case(word: str, like: str) -> str:
    if like.isupper():
        return word.upper()
    if like[:1].isupper():
        return word.capitalize()
    return word
