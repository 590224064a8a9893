"""The `carml` command line. Every user error ends as one clear message and a non-zero exit code."""

from __future__ import annotations

import importlib

import click

from carml.errors import CarmlError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="carml")
def cli() -> None:
    """CarML: try, validate and benchmark ML models across frameworks and hardware."""


# Modules of carml.cli that define a COMMANDS list; imported when the CLI runs, not when carml.cli is imported.
COMMAND_MODULES = (
    "account_commands",
    "catalog_commands",
    "compare_commands",
    "db_commands",
    "recommend_commands",
    "report_commands",
    "run_commands",
    "service_commands",
    "tool_commands",
    "up_commands",
)


def _register() -> None:
    for name in COMMAND_MODULES:
        for command in importlib.import_module(f"carml.cli.{name}").COMMANDS:
            cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `carml` script."""
    _register()
    try:
        # NB: without standalone mode, click returns the code of a `click.exceptions.Exit` instead of raising.
        result = cli.main(args=argv, prog_name="carml", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except CarmlError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    return result if isinstance(result, int) else 0
