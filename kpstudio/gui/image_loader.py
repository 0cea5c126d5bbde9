"""Decodes images on pool threads so a 20+ MP photo never freezes the window."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal, Slot

from kpstudio.core.image_reader import ImageReadError, read_image

_Key = tuple[int, str]  # (image id, path): the path too, so a relinked file is read afresh

_REQUEST_PRIORITY = 1  # the image the user is waiting for goes ahead of prefetches
_PREFETCH_PRIORITY = 0


class ImageLoader(QObject):
    """Decode image files off the UI thread; deliver only the latest request.

    `request()` asks for the image the user wants now: `loaded` (or `failed`) follows for it,
    unless another `request()` comes first, in which case the older one is dropped (a decode
    already running finishes and lands in the cache). `prefetch()` decodes into a small LRU
    cache, so stepping to the next or previous image is instant.
    """

    loaded = Signal(int, object)  # (image id, HxWx3 uint8 RGB)
    failed = Signal(int, str)  # (image id, message naming the file)
    # (key, image | None, message | None) from a pool thread; both None: skipped as stale.
    _decoded = Signal(object)

    def __init__(self, parent: QObject | None = None, cache_images: int = 4,
                 cache_bytes: int = 512 * 2**20, threads: int = 2) -> None:  # fmt: skip
        super().__init__(parent)
        self._pool = QThreadPool(self)
        # Two threads: the current image and one prefetch decode side by side (cv2 releases
        # the GIL); more would only fight training for the cores.
        self._pool.setMaxThreadCount(max(1, threads))
        self._cache: OrderedDict[_Key, np.ndarray] = OrderedDict()
        self._cache_images = max(1, cache_images)
        self._cache_bytes = cache_bytes
        self._in_flight: set[_Key] = set()
        self._prefetched: set[_Key] = set()  # wanted in the cache even if no longer latest
        self._latest: _Key | None = None
        self._token = 0  # bumped by every request(), so each request is answered at most once
        self._answered = 0
        # Emitted from pool threads, received here in the GUI thread: a queued connection to a
        # slot of this GUI-thread object (a lambda would run in the pool thread).
        self._decoded.connect(self._on_decoded)

    # -- public API ------------------------------------------------------------------------
    def request(self, image_id: int, path: str | Path) -> None:
        """Decode `path` for display; `loaded` or `failed` follows unless superseded."""
        key = (int(image_id), str(path))
        self._latest = key
        self._token += 1
        if key in self._cache:
            self._cache.move_to_end(key)
            # Answer from the event loop, not from inside request(): callers may still be
            # setting up for the new image, and a reply mid-call would find them half-done.
            token = self._token
            QTimer.singleShot(0, self, lambda: self._answer_from_cache(token))
        elif key not in self._in_flight:
            self._start(key, _REQUEST_PRIORITY)

    def prefetch(self, image_id: int, path: str | Path) -> None:
        """Decode `path` into the cache ahead of need; emits nothing by itself."""
        key = (int(image_id), str(path))
        if key in self._cache:
            return
        self._prefetched.add(key)
        if key not in self._in_flight:
            self._start(key, _PREFETCH_PRIORITY)

    def cached(self, image_id: int, path: str | Path) -> np.ndarray | None:
        """The decoded image if it is in the cache (touches nothing, decodes nothing)."""
        return self._cache.get((int(image_id), str(path)))

    def clear_cache(self) -> None:
        """Forget decoded images (e.g. after files changed on disk)."""
        self._cache.clear()

    def wait_for_done(self, msecs: int = -1) -> bool:
        """Block until running decodes finish (for shutdown and tests)."""
        return self._pool.waitForDone(msecs)

    # -- decoding --------------------------------------------------------------------------
    def _start(self, key: _Key, priority: int) -> None:
        self._in_flight.add(key)
        self._pool.start(lambda: self._decode(key), priority)

    def _decode(self, key: _Key) -> None:
        """Runs on a pool thread: touches no widget, reports through a signal only."""
        # A request superseded while it waited in the queue is not worth 300 ms of CPU
        # (someone holding "next image" would otherwise queue a decode per image).
        if self._latest != key and key not in self._prefetched:
            result: tuple = (key, None, None)
        else:
            try:
                result = (key, read_image(key[1]), None)
            except ImageReadError as exc:
                result = (key, None, str(exc))
            except Exception as exc:  # MemoryError and the like: still shown, never lost here
                result = (key, None, f"{key[1]}: the image could not be read ({exc!r})")
        try:
            self._decoded.emit(result)
        except RuntimeError:
            pass  # the loader was deleted while this decode ran: nobody is waiting for it

    @Slot(object)
    def _on_decoded(self, result: tuple) -> None:
        key, image, message = result
        self._in_flight.discard(key)
        self._prefetched.discard(key)
        if image is not None:
            self._remember(key, image)
        if key != self._latest or self._answered == self._token:
            return
        if image is not None:
            self._answered = self._token
            self.loaded.emit(key[0], image)
        elif message is not None:
            self._answered = self._token
            self.failed.emit(key[0], message)
        else:
            # Skipped as stale, but the user came back to it before the skip was reported:
            # request() saw it in flight and started nothing, so start it now.
            self._start(key, _REQUEST_PRIORITY)

    def _answer_from_cache(self, token: int) -> None:
        if token != self._token:
            return  # superseded since
        if self._latest not in self._cache:  # evicted meanwhile by a burst of prefetches
            if self._latest not in self._in_flight:
                self._start(self._latest, _REQUEST_PRIORITY)
            return
        self._answered = token
        self.loaded.emit(self._latest[0], self._cache[self._latest])

    def _remember(self, key: _Key, image: np.ndarray) -> None:
        self._cache[key] = image
        self._cache.move_to_end(key)
        total = sum(a.nbytes for a in self._cache.values())
        # Always keep the newest entry, even if it alone exceeds the byte budget.
        while len(self._cache) > 1 and (
            len(self._cache) > self._cache_images or total > self._cache_bytes
        ):
            _, dropped = self._cache.popitem(last=False)
            total -= dropped.nbytes
