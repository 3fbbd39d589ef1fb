"""The ``edgeae`` command line: a thin click layer over the library.

Each command parses options, calls one library function and prints the result. Heavy
imports (torch, onnx, onnxruntime) happen inside the commands so ``edgeae --help`` is
instant. Any :class:`edgeae.errors.EdgeAEError` becomes ``Error: ...`` and exit code 1.
"""

from __future__ import annotations

import sys

import click

from edgeae.errors import EdgeAEError

__all__ = ["cli", "main"]


class _Group(click.Group):
    """A click group that turns library errors into ``Error: ...`` without a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdgeAEError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgeae")
def cli() -> None:
    """edgeae: autoencoders from PyTorch training to edge deployment.

    \b
    train -> export -> encode / decode / reconstruct / compress -> bench
    """


def main() -> None:
    cli(prog_name="edgeae")


# ---------------------------------------------------------------------------------------
# Commands are grouped by stage below: training, export, runtime, compression, benchmark.
# ---------------------------------------------------------------------------------------
