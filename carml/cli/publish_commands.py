"""`carml models publish` and `carml models remove`: models published through the service, as CARML_USER."""

from __future__ import annotations

from pathlib import Path

import click

from carml.accounts import AccountError, Caller, get_user
from carml.cli.output import print_json
from carml.db.migrate import require_current
from carml.publishing import MAX_PUBLISHED_BYTES, PublishedModelInfo, PublishError, publish_model, remove_model
from carml.settings import Settings, load_settings


def _settings() -> Settings:
    settings = load_settings()
    require_current(settings.database)
    return settings


def _caller(settings: Settings) -> Caller:
    """The user CARML_USER names, with the role the database gives it: the CLI publishes with that role."""
    try:
        user = get_user(settings, settings.user)
    except AccountError as exc:
        raise AccountError(f"CARML_USER={settings.user}: {exc}", status=exc.status) from None
    if user.disabled:
        raise AccountError(f"CARML_USER={settings.user}: the user is disabled", status=403)
    return user.caller


def _read(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_PUBLISHED_BYTES:
        raise PublishError(f"{path}: the file is {size} bytes; published manifests are at most {MAX_PUBLISHED_BYTES}")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise PublishError(f"{path}: not UTF-8 text") from None


def _as_json(model: PublishedModelInfo) -> dict[str, str]:
    return {
        "name": model.name,
        "framework": model.framework,
        "version": model.version,
        "owner": model.owner,
        "manifest_sha256": model.manifest_sha256,
        "published_at": model.published_at.isoformat(),
    }


@click.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the published model as JSON.")
def publish_command(file: Path, as_json: bool) -> None:
    """Publish the model manifest FILE through the service (or replace your own of that name and framework).

    Its artifacts and labels files must be https://, s3:// (with sha256) or pkg:// URLs: workers on other machines
    read it from the database. Acts as CARML_USER, who needs the publisher role."""
    settings = _settings()
    result = publish_model(settings, _caller(settings), _read(file), source=str(file))
    model = result.model
    if as_json:
        print_json({**_as_json(model), "outcome": result.outcome.value})
        return
    click.echo(f"{model.key} {model.version} {result.outcome} (sha256 {model.manifest_sha256[:12]}, by {model.owner})")


@click.command("remove")
@click.argument("name")
@click.option("--framework", "-f", help="Which framework's manifest, when the model is published for several.")
def remove_command(name: str, framework: str | None) -> None:
    """Remove the published model NAME (yours, or any as an admin); refused while queued or running jobs use it.

    Results of finished jobs stay. A model from a manifest folder is removed by deleting its file."""
    settings = _settings()
    removed = remove_model(settings, _caller(settings), name, framework)
    click.echo(f"{removed.key} {removed.version} removed (published by {removed.owner})")
