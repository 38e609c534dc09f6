"""The command line's one error shape: ``botpulse: error: <message>`` on stderr, one line."""

from __future__ import annotations

from typing import IO, Any

import click

from ..store import redact_url

__all__ = ["CommandFailedError", "CommandLineError", "one_line"]


def one_line(text: object) -> str:
    """``text`` on a single line (whitespace runs collapsed) with any URL password masked."""
    return redact_url(" ".join(str(text).split()))


class CommandLineError(click.ClickException):
    """Bad input the user can fix; shown as one line on stderr, exit code 2.

    Example::

        raise CommandLineError("cannot write --output 'x.html': Permission denied")
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))

    def show(self, file: IO[Any] | None = None) -> None:
        """Print ``botpulse: error: <message>`` to stderr (or ``file``)."""
        click.echo(f"botpulse: error: {self.format_message()}", file=file, err=file is None)


class CommandFailedError(CommandLineError):
    """Not bad input but a missing piece of the installation; same line, exit code 1."""

    exit_code = 1
