"""The ``aioface`` command: ``main`` (the console script), the command group, the one error -> exit code map.

A thin layer over the library: each command is a module of this package (``_generate``, ``_edit``,
``_swap``, ``_batch``, ``_bench``, ``_limits``, ``_emulator``, ``_demo``) over shared options
(``_params``), progress (``_progress``, ``_fanout``) and the event loop (``_runner``).
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
from typing import Any

import click

from .._config import LOG_LEVEL_ENV
from .._errors import AiofaceError, ConfigurationError, InvalidRequestError
from ._progress import err_console, paid_hints
from ._runner import Interrupted, Terminated

#: The hand-written commands, by name: ``module:attribute``, imported only when the command runs (or
#: ``--help`` lists them), so a run pays for its own command's imports and no other's.
COMMANDS = {
    "generate": "_generate:generate",
    "change-age": "_edit:change_age",
    "swap": "_swap:swap",
    "batch": "_batch:batch",
    "emulator": "_emulator:emulator",
    "bench": "_bench:bench",
    "demo": "_demo:demo",
}

#: Exit codes: all went well; some items failed (or the run did); bad usage or input, nothing sent;
#: Ctrl-C; SIGTERM.
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


def exit_code(exc: AiofaceError | Interrupted | Terminated) -> int:
    """Print what ended the run (on stderr) and return its exit code: the one error formatter."""
    if isinstance(exc, Interrupted):
        err_console.print("interrupted: finished files are kept, partial ones removed; rerun to resume")
        return EXIT_INTERRUPTED
    if isinstance(exc, Terminated):
        err_console.print("terminated: finished files are kept, partial ones removed; rerun to resume")
        return EXIT_TERMINATED
    err_console.print(f"[red]error:[/red] {exc}", highlight=False)
    for line in paid_hints(exc):
        err_console.print(line, highlight=False, soft_wrap=True)  # a command or URL stays whole
    return EXIT_USAGE if isinstance(exc, (InvalidRequestError, ConfigurationError)) else EXIT_SOME_FAILED


class CommandGroup(click.Group):
    """A group whose commands end, on an aioface error, Ctrl-C or SIGTERM, with :func:`exit_code`.

    Commands are loaded by name when first asked for (click's lazy group): the hand-written ones
    (:data:`COMMANDS`), then one per registry operation that has none (a plug-in's too), then
    ``limits``.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        from ..providers import operations

        names = {*self.commands, *COMMANDS, *(op.replace("_", "-") for op in operations()), "limits"}
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None:
            command = load_command(cmd_name)
            if command is not None:
                self.add_command(command, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (AiofaceError, Interrupted, Terminated) as exc:
            sys.exit(exit_code(exc))


@click.group(cls=CommandGroup, name="aioface", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aioface")
def group() -> None:
    """aioface: drive face-image AI APIs concurrently, at their rate limits and not a request faster.

    Keys come from AIOFACE_FACESTUDIO_KEY, AIOFACE_ACEDATA_TOKEN and AIOFACE_AILAB_KEY; base URLs
    from AIOFACE_<PROVIDER>_BASE_URL. Try `aioface demo` first: it runs against the emulator.
    Set AIOFACE_LOG_LEVEL=DEBUG to see every request (keys are never logged).
    """
    level = os.environ.get(LOG_LEVEL_ENV, "WARNING").upper()
    logging.basicConfig(level=getattr(logging, level, logging.WARNING), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def load_command(name: str) -> click.Command | None:
    """The command called ``name``, its module imported now; None if there is none."""
    where = COMMANDS.get(name)
    if where is not None:
        module, attribute = where.split(":")
        command: click.Command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
        return command
    from ..providers import operations

    for op, offered in operations().items():
        if op.replace("_", "-") == name:
            from ._edit import make_command

            return make_command(op, [spec.name for spec, _ in offered], offered[0][1])
    if name == "limits":
        from ._limits import limits_command

        return limits_command
    return None


@functools.cache
def app() -> click.Group:
    """The ``aioface`` command group with every command loaded (``main`` loads only the one run)."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        group.get_command(ctx, name)
    return group


def main() -> None:
    """Run the ``aioface`` command (the console script, and ``python -m aioface``)."""
    group()


__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "COMMANDS",
    "app",
    "exit_code",
    "load_command",
    "main",
]
