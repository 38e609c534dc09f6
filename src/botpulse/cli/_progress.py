"""The demo's progress bar: a rich bar on stderr, fed fractions from the demo's event loop."""

from __future__ import annotations

import math
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["DemoProgress"]


class DemoProgress:
    """A progress bar whose :meth:`update` is safe to hand to ``run_demo(on_progress=...)``.

    It draws only on a terminal (stderr by default, so ``--format json`` output stays
    clean) and disappears when done.

    Example::

        with DemoProgress("Simulating 8 users") as progress:
            run_demo(store, 20, on_progress=progress.update)
    """

    def __init__(self, description: str, console: Console | None = None) -> None:
        console = console or Console(stderr=True)
        self.fraction = 0.0
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("remaining"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._task: TaskID = self._progress.add_task(description, total=1.0)

    def update(self, fraction: float) -> None:
        """Show ``fraction`` (0..1) done; odd values are clamped or ignored, never raised."""
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
            return
        if not math.isfinite(fraction):
            return
        self.fraction = min(max(float(fraction), 0.0), 1.0)
        self._progress.update(self._task, completed=self.fraction)

    def __enter__(self) -> DemoProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()
