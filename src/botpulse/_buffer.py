"""The bounded event buffer between the hot path and the pipeline: drop and count when full.

Producers (any thread or task) call :meth:`EventBuffer.offer`; the pipeline thread calls
:meth:`EventBuffer.drain`. No lock is shared with the I/O thread: ``deque.append`` and
``deque.popleft`` are atomic, and drops are counted with ``itertools.count``, whose
``next()`` is atomic too, so ``accepted + dropped == offered`` holds exactly under any
contention. The bound may be overshot by at most one event per concurrently running
producer thread, which keeps memory bounded without a lock.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Sized
from typing import Any

__all__ = ["EventBuffer", "counter_value"]

_WAKE_AT = 512


def counter_value(counter: itertools.count[int]) -> int:
    """The next value an ``itertools.count`` would return, read without advancing it."""
    text = repr(counter)  # "count(17)"
    return int(text[text.index("(") + 1 : text.rindex(")")])


class EventBuffer:
    """A fixed-capacity FIFO of event records that wakes its consumer when it fills up.

    ``offer`` is the only method on the hot path; it never blocks and never raises.
    Below ``wake_at`` events it only appends. Past it, :meth:`overflow` appends (or
    counts a drop when the buffer is full) and sets ``wake`` once, so the pipeline
    thread sleeps until there is work instead of polling.
    """

    __slots__ = ("_drops", "_events", "append", "capacity", "threshold_hook", "wake", "wake_at")

    def __init__(self, capacity: int, wake_at: int | None = None) -> None:
        self.capacity = capacity
        # Small enough that records die young (before the cyclic GC promotes them), large
        # enough that a busy bot wakes the pipeline a few times a second, not per event.
        default = max(1, min(capacity // 4, _WAKE_AT))
        self.wake_at = min(capacity, default if wake_at is None else max(1, wake_at))
        self._events: deque[Any] = deque()
        self.append = self._events.append
        self._drops: itertools.count[int] = itertools.count()
        self.wake = threading.Event()
        #: Set by the hot path: called with the length it should compare against (the
        #: capacity once the consumer is woken, ``wake_at`` again once it has drained),
        #: so a burst costs one call to :meth:`overflow`, not one per event.
        self.threshold_hook: Callable[[int], None] | None = None

    def hot_path(self) -> tuple[Sized, Callable[[object], None], int, Callable[[object], None]]:
        """What the hot path inlines: the queue, its append, the wake threshold, the overflow."""
        return self._events, self._events.append, self.wake_at, self.overflow

    def overflow(self, record: object) -> None:
        """Past the wake threshold: append and wake the consumer, or count a drop when full."""
        if len(self._events) < self.capacity:
            self.append(record)
        else:
            next(self._drops)
        wake = self.wake
        if not wake.is_set():
            wake.set()
            hook = self.threshold_hook
            if hook is not None:
                hook(self.capacity)

    def rearm(self) -> None:
        """The consumer has drained: wake it again past ``wake_at`` events."""
        hook = self.threshold_hook
        if hook is not None:
            hook(self.wake_at)

    def arm_first(self) -> None:
        """The consumer goes idle: wake it at the very next event (then at ``wake_at`` again).

        So an idle bot's pipeline sleeps until something happens instead of waking
        every flush interval to find nothing.
        """
        hook = self.threshold_hook
        if hook is not None:
            hook(0)

    def offer(self, record: object) -> None:
        """Append ``record``, or count it as dropped when the buffer is full."""
        if len(self._events) < self.wake_at:
            self.append(record)
        else:
            self.overflow(record)

    def __len__(self) -> int:
        return len(self._events)

    @property
    def dropped(self) -> int:
        """Events refused because the buffer was full, since it was created."""
        return counter_value(self._drops)

    def drain(self, limit: int | None = None) -> list[Any]:
        """Remove and return up to ``limit`` events (all present when ``None``), oldest first."""
        events = self._events
        n = len(events)
        if limit is not None:
            n = min(n, limit)
        popleft = events.popleft
        return [popleft() for _ in range(n)]
