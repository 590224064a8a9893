"""Maintenance commands: regenerate JSON Schemas, rebuild the reference models."""

from __future__ import annotations

from pathlib import Path

import click

from carml.manifest.jsonschema import stale_schemas, write_schemas

DEFAULT_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"


@click.command("schema")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_SCHEMA_DIR,
    show_default=True,
    help="Folder for the *.schema.json files.",
)
@click.option("--check", is_flag=True, help="Exit non-zero if the files differ from the code instead of writing.")
def schema_command(out: Path, check: bool) -> None:
    """Write the JSON Schemas of model and dataset manifests (generated from the code)."""
    if check:
        stale = stale_schemas(out)
        if stale:
            raise click.ClickException(f"out of date in {out}: {', '.join(stale)}; run `carml schema`")
        click.echo(f"{out}: up to date")
        return
    for path in write_schemas(out):
        click.echo(f"wrote {path}")


@click.group("zoo")
def zoo_group() -> None:
    """Reference models CarML builds itself."""


@zoo_group.command("build")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Manifests folder to write into (default: the project's manifests/).",
)
def zoo_build_command(out: Path | None) -> None:
    """Train digits-cnn reproducibly and export it to TorchScript, ONNX and Keras, with its manifests."""
    from carml.zoo.build import build_zoo

    report = build_zoo(out)
    click.echo(str(report))


COMMANDS = [schema_command, zoo_group]
