"""The ``botpulse`` command group and its error boundary: one line on stderr, exit code 2."""

from __future__ import annotations

from typing import Any

import click

from .. import __version__
from ..errors import BotpulseError
from ._errors import CommandLineError
from .audit_command import audit
from .demo_command import demo
from .report_command import report

__all__ = ["BotpulseGroup", "main"]


def _usage_error(exc: click.UsageError) -> CommandLineError:
    """Click's multi-line usage error as our one line, with a pointer to ``--help``."""
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return CommandLineError(exc.format_message() + hint)


class BotpulseGroup(click.Group):
    """A click group that turns every expected failure into ``botpulse: error: ...``.

    Usage errors (from parsing this group's or a command's options) and any
    :class:`~botpulse.errors.BotpulseError` raised by a command become one line on
    stderr with exit code 2; passwords in store URLs are masked. Anything else is a
    bug and keeps its traceback.
    """

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Parse this group's own options, reporting usage errors as one line."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except CommandLineError:
            raise
        except click.UsageError as exc:
            raise _usage_error(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, mapping usage errors and botpulse errors to one line."""
        try:
            return super().invoke(ctx)
        except CommandLineError:
            raise
        except click.UsageError as exc:
            raise _usage_error(exc) from exc
        except BotpulseError as exc:
            raise CommandLineError(str(exc)) from exc


@click.group(
    cls=BotpulseGroup,
    name="botpulse",
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "-V", "--version", prog_name="botpulse")
@click.pass_context
def main(ctx: click.Context) -> None:
    """botpulse: performance monitoring for chat bots.

    Reads what your bot recorded (botpulse.init(store=...)) and shows latency
    percentiles per command and step, and the slowest flows as waterfalls.

    \b
    Try it without a bot:
      botpulse demo
    Then, for your own bot:
      botpulse report --since 24h --store sqlite:///botpulse.db
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


main.add_command(report)
main.add_command(demo)
main.add_command(audit)
