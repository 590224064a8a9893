"""Commands that read the catalog: models, datasets, frameworks, validate."""

from __future__ import annotations

from pathlib import Path

import click

from carml.artifacts import ArtifactCache
from carml.catalog import MANIFEST_SUFFIXES, Catalog
from carml.cli.output import percent, print_json, print_table
from carml.cli.publish_commands import publish_command, remove_command
from carml.publishing import service_catalog
from carml.settings import load_settings
from carml.validation import fetchable_schemes, validate_file
from predictors.registry import broken_plugins, predictor_classes


def _report_catalog_problems(catalog: Catalog) -> None:
    for problem in catalog.problems:
        click.echo(f"warning: {problem} (skipped)", err=True)


@click.group("models", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--all", "show_hidden", is_flag=True, help="Include hidden models.")
@click.pass_context
def models_command(ctx: click.Context, as_json: bool, show_hidden: bool) -> None:
    """List models: name, version, framework, task, claimed accuracy, and who published those published through
    the service. `carml models publish FILE` and `carml models remove NAME` publish and remove them."""
    if ctx.invoked_subcommand is not None:
        return
    catalog = service_catalog(load_settings(), local=True)
    _report_catalog_problems(catalog)
    available = {name: cls.availability() for name, cls in predictor_classes().items()}
    rows = []
    for loaded in sorted(catalog.models, key=lambda m: (m.manifest.name, m.manifest.framework.name)):
        m = loaded.manifest
        if m.hidden and not show_hidden:
            continue
        status = available.get(m.framework.name)
        runnable = bool(status and status.available and m.framework.accepts(status.version or ""))
        publication = catalog.publication(loaded)
        rows.append(
            {
                "name": m.name,
                "version": m.version,
                "framework": m.framework.name,
                "task": m.task,
                "modality": m.modality,
                "claimed_top1": m.attributes.top1,
                "claimed_top5": m.attributes.top5,
                "runnable": runnable,
                "manifest": str(loaded.source),
                "source": "published" if publication else "folder",
                "owner": publication.owner if publication else None,
            }
        )
    if as_json:
        print_json(rows)
        return
    print_table(
        ["name", "version", "framework", "task", "top-1", "top-5", "runnable", "source", "owner"],
        [
            [
                r["name"],
                r["version"],
                r["framework"],
                r["task"],
                percent(r["claimed_top1"]),
                percent(r["claimed_top5"]),
                "yes" if r["runnable"] else "no",
                r["source"],
                r["owner"],
            ]
            for r in rows
        ],
    )


@click.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def datasets_command(as_json: bool) -> None:
    """List datasets: name, modality, format, split."""
    catalog = service_catalog(load_settings(), local=True)
    _report_catalog_problems(catalog)
    rows = [
        {
            "name": d.manifest.name,
            "version": d.manifest.version,
            "modality": d.manifest.modality,
            "task": d.manifest.task,
            "format": d.manifest.format,
            "split": d.manifest.split,
            "description": d.manifest.description.strip(),
            "manifest": str(d.source),
        }
        for d in sorted(catalog.datasets, key=lambda d: d.manifest.name)
    ]
    if as_json:
        print_json(rows)
        return
    print_table(
        ["name", "modality", "format", "split", "task"],
        [[r["name"], r["modality"], r["format"], r["split"], r["task"]] for r in rows],
    )


@click.command("frameworks")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def frameworks_command(as_json: bool) -> None:
    """List predictor plugins and whether each framework can run here."""
    rows = []
    for name, cls in sorted(predictor_classes().items()):
        status = cls.availability()
        rows.append(
            {
                "framework": name,
                "available": status.available,
                "version": status.version,
                "reason": status.reason,
                "plugin": f"{cls.__module__}:{cls.__qualname__}",
            }
        )
    rows += [
        {
            "framework": name,
            "available": False,
            "version": None,
            "reason": f"plugin failed to load: {why}",
            "plugin": None,
        }
        for name, why in sorted(broken_plugins().items())
    ]
    if as_json:
        print_json(rows)
        return
    print_table(
        ["framework", "available", "version", "note"],
        [[r["framework"], "yes" if r["available"] else "no", r["version"], r["reason"]] for r in rows],
    )


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES and p.is_file())
        else:
            files.append(path)
    return files


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON.")
def validate_command(paths: tuple[Path, ...], as_json: bool) -> None:
    """Check manifests (files or folders) against the schema, their framework and their files."""
    cache = ArtifactCache(load_settings())
    files = _expand(paths)
    if not files:
        raise click.ClickException("no manifest files (*.yaml, *.yml) found in the given paths")
    schemes = fetchable_schemes()  # once: plugin warnings should not repeat per file
    report = {str(path): validate_file(path, cache, schemes) for path in files}
    bad = sum(1 for problems in report.values() if problems)
    if as_json:
        print_json([{"file": f, "valid": not ps, "problems": [p.__dict__ for p in ps]} for f, ps in report.items()])
    else:
        for file, problems in report.items():
            if problems:
                for problem in problems:
                    click.echo(str(problem), err=True)
            else:
                click.echo(f"{file}: ok")
        click.echo(f"{len(files) - bad} valid, {bad} invalid", err=bad > 0)
    if bad:
        raise click.exceptions.Exit(1)


models_command.add_command(publish_command)
models_command.add_command(remove_command)

COMMANDS = [models_command, datasets_command, frameworks_command, validate_command]
