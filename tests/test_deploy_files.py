"""Static checks of the deployment files: docker-compose.yml, Dockerfile, .dockerignore and docs/deploy.md.

There is no Docker engine in CI, so nothing here builds or starts a container; instead the files are
checked against the code they deploy (setting names, CLI commands, the web app's routes), and against
each other, so that they cannot silently go stale. `docker compose config` is run too when the docker
client has the compose plugin (it only parses, no engine needed).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from carml.settings import load_settings, setting_fields

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

# Names as they appear in text: CARML_ then upper-case words; "CARML_S3_*" (a family) leaves a trailing "_".
CARML_VARIABLE = re.compile(r"\bCARML_[A-Z0-9_]*[A-Z0-9]\b")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def setting_names() -> set[str]:
    return {f.metadata["env"] for f in setting_fields()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # safe_load resolves the anchors, aliases and `<<` merge keys the file uses.
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    # Continuation lines joined, comments dropped: one instruction per line.
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    return re.sub(r"\\\n\s*", " ", "\n".join(lines))


def carml_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run the image built from this project's Dockerfile."""
    return {name: s for name, s in services.items() if "build" in s}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    assert isinstance(command, list), "commands are exec form (a list), so no shell mangles them"
    return [str(part) for part in command]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment is a mapping, so the anchor can be merged into it"
    return {str(k): str(v) for k, v in env.items()}


def with_defaults(value: str) -> str:
    """`${VAR:-default}` replaced by its default, as compose does with VAR unset."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value).replace("$$", "$")


def resolve_cli(argv: list[str]) -> click.Command:
    """The `carml` command that argv names; options are parsed, so an unknown option fails."""
    from carml.cli import _register, cli

    _register()
    assert argv[0] == "carml", argv
    command: click.Command = cli
    args, name = argv[1:], "carml"
    while isinstance(command, click.Group):
        assert args, f"{' '.join(argv)}: names a group, not a command"
        name, *args = args
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, f"{' '.join(argv)}: `carml` has no command {name!r}"
        command = sub
    command.make_context(name, list(args))  # raises click.UsageError on an unknown option or a bad value
    return command


# ------------------------------------------------------------------ docker-compose.yml


def test_compose_parses_with_the_expected_services(compose: dict[str, Any]) -> None:
    assert isinstance(compose, dict)
    assert set(compose["services"]) >= {
        "postgres",
        "redis",
        "minio",
        "minio-setup",
        "migrate",
        "web",
        "worker-cpu",
        "worker-gpu",
    }
    assert isinstance(compose["x-carml-env"], dict)


def test_every_carml_service_shares_the_anchor_environment(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    shared = compose["x-carml-env"]
    assert {"migrate", "web", "worker-cpu", "worker-gpu"} <= set(carml_services(services))
    for name, service in carml_services(services).items():
        env = environment_of(service)
        missing = {k: v for k, v in shared.items() if env.get(k) != str(v)}
        assert not missing, f"{name}: lacks (or overrides) the x-carml-env settings {missing}"


def test_anchor_holds_the_service_backends(compose: dict[str, Any]) -> None:
    env = {k: with_defaults(str(v)) for k, v in compose["x-carml-env"].items()}
    assert env["CARML_DATABASE_URL"] == "postgresql+psycopg://carml:carml@postgres:5432/carml"
    assert env["CARML_BROKER_URL"] == "redis://redis:6379/0"
    assert env["CARML_OBJECT_STORE"] == "s3://carml"
    assert env["CARML_S3_ENDPOINT"] == "minio:9000"
    assert env["CARML_S3_ACCESS_KEY"] == "carml"
    assert env["CARML_S3_SECRET_KEY"] == "carml-secret"
    # The values are what the settings parsers accept, and they select the servers, not the embedded default.
    settings = load_settings(env)
    assert not settings.embedded
    assert settings.s3_secure is False
    assert settings.s3_region == "us-east-1"
    assert settings.database.startswith("postgresql+psycopg://")


def test_s3_credentials_are_minio_root_credentials(services: dict[str, dict[str, Any]]) -> None:
    shared = environment_of(services["web"])
    minio = environment_of(services["minio"])
    assert shared["CARML_S3_ACCESS_KEY"] == minio["MINIO_ROOT_USER"]
    assert shared["CARML_S3_SECRET_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    assert shared["CARML_DATABASE_URL"].count(environment_of(services["postgres"])["POSTGRES_PASSWORD"]) == 1


def test_every_carml_variable_in_compose_is_a_setting() -> None:
    used = set(CARML_VARIABLE.findall(COMPOSE.read_text()))
    assert used, "docker-compose.yml sets no CARML_* variable"
    assert used <= setting_names(), f"not settings in carml/settings.py: {sorted(used - setting_names())}"


def test_depends_on_conditions_are_sound(services: dict[str, dict[str, Any]]) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must say the condition of each dependency"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on {target!r}, which is not a service"
            assert target != name
            condition = spec["condition"]
            assert condition in conditions, f"{name} -> {target}: unknown condition {condition!r}"
            if condition == "service_healthy":
                check = services[target].get("healthcheck")
                assert check and not check.get("disable"), f"{name} waits for {target} healthy: it has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} is one-shot: restart must be 'no'"
            # A service everyone starts must not wait for one that only a profile starts.
            if not service.get("profiles"):
                assert not services[target].get("profiles"), f"{name} depends on {target}, only in a profile"


def test_startup_order(services: dict[str, dict[str, Any]]) -> None:
    def condition(name: str, target: str) -> str | None:
        return (services[name].get("depends_on") or {}).get(target, {}).get("condition")

    assert condition("migrate", "postgres") == "service_healthy"
    assert condition("minio-setup", "minio") == "service_healthy"
    for name in ("web", "worker-cpu", "worker-gpu"):
        assert condition(name, "migrate") == "service_completed_successfully", name
        assert condition(name, "redis") == "service_healthy", name
        assert condition(name, "minio") == "service_healthy", name


def test_backends_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert "/minio/health/live" in " ".join(services["minio"]["healthcheck"]["test"])
    assert "/api/v1/health" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["postgres"]["image"].split(":")[1].startswith("16")
    assert services["redis"]["image"].split(":")[1].startswith("7")


def test_web_healthcheck_path_is_a_route_of_the_app(services: dict[str, dict[str, Any]]) -> None:
    from webapp import create_app

    test = " ".join(services["web"]["healthcheck"]["test"])
    path = re.search(r"http://[^/'\"]+(/[^'\"\s]*)", test).group(1)
    rules = {rule.rule for rule in create_app().url_map.iter_rules()}  # builds the app, connects to nothing
    assert path in rules


def test_minio_setup_creates_the_object_store_bucket(compose: dict[str, Any]) -> None:
    bucket = with_defaults(compose["x-carml-env"]["CARML_OBJECT_STORE"]).removeprefix("s3://").split("/")[0]
    script = " ".join(compose["services"]["minio-setup"]["command"])
    assert re.search(rf"mc mb --ignore-existing \S+/{re.escape(bucket)}\b", script), script


def test_web_runs_the_app_factory_under_gunicorn(services: dict[str, dict[str, Any]]) -> None:
    command = command_of(services["web"])
    assert command[0] == "gunicorn"
    assert "webapp:create_app()" in command
    assert command[command.index("-b") + 1] == "0.0.0.0:8080"
    assert any(port.split(":")[-1] == "8080" for port in services["web"]["ports"])


def test_carml_commands_in_compose_exist(services: dict[str, dict[str, Any]]) -> None:
    assert command_of(services["migrate"]) == ["carml", "db", "upgrade"]
    assert command_of(services["worker-cpu"])[:4] == ["carml", "worker", "--hardware", "cpu"]
    assert command_of(services["worker-gpu"])[:4] == ["carml", "worker", "--hardware", "auto"]
    for name, service in carml_services(services).items():
        command = command_of(service)
        if command[0] == "carml":
            resolve_cli(command)
        else:
            assert name == "web", f"{name}: runs {command[0]!r}, not carml"


def test_gpu_worker_reserves_nvidia_gpus_behind_a_profile(services: dict[str, dict[str, Any]]) -> None:
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["target"] == "gpu"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    for name, service in services.items():
        if name != "worker-gpu":
            assert not service.get("profiles"), f"{name}: only the GPU worker needs a profile"
            assert "deploy" not in service, f"{name}: only the GPU worker reserves devices"


def test_no_backend_port_is_published(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "redis"):
        assert not services[name].get("ports"), f"{name} must not be published"
    for port in services["minio"].get("ports", []):
        assert str(port).startswith("127.0.0.1:"), f"MinIO is published on loopback only: {port}"


def test_volumes_are_named_and_declared(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            assert not source.startswith((".", "/")), f"{name}: use a named volume, not a bind mount: {volume}"
            used.add(source)
    assert used == declared
    # The image's CARML_CACHE_DIR (checked in the Dockerfile tests) is one volume for every CarML container.
    for name in ("web", "worker-cpu", "worker-gpu"):
        assert "artifact-cache:/var/cache/carml" in compose["services"][name]["volumes"], name


def test_compose_build_targets_are_dockerfile_stages(services: dict[str, dict[str, Any]], dockerfile: str) -> None:
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile, re.MULTILINE | re.IGNORECASE))
    for name, service in carml_services(services).items():
        assert service["build"]["target"] in stages, f"{name}: no Dockerfile stage {service['build']['target']!r}"


def docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=60)
    return probe.returncode == 0


@pytest.mark.skipif(not docker_compose_available(), reason="no `docker compose` (client with the compose plugin)")
@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]], ids=["cpu", "gpu"])
def test_docker_compose_config_accepts_the_file(profile: list[str]) -> None:
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), *profile, "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ Dockerfile and .dockerignore


def test_dockerfile_stages(dockerfile: str) -> None:
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile, re.MULTILINE | re.IGNORECASE)
    stages = {stage: image for image, stage in froms}
    assert stages["cpu"] == "python:3.11-slim"
    assert froms[-1][1] == "cpu", "the default (last) stage is the CPU image"
    cuda_default = re.search(r"^ARG\s+CUDA_IMAGE=(\S+)", dockerfile, re.MULTILINE).group(1)
    assert stages["gpu"] == "${CUDA_IMAGE}" and cuda_default.startswith("nvidia/cuda:")
    assert "runtime" in cuda_default


def stage_text(dockerfile: str, stage: str) -> str:
    parts = re.split(r"^(?=FROM\s)", dockerfile, flags=re.MULTILINE)
    (text,) = [p for p in parts if re.match(rf"FROM\s+\S+\s+AS\s+{stage}\b", p, re.IGNORECASE)]
    return text


def test_dockerfile_installs_the_extras(dockerfile: str) -> None:
    cpu, gpu = stage_text(dockerfile, "cpu"), stage_text(dockerfile, "gpu")
    assert re.search(r"pip install [^\n]*'\.\[all\]'[^\n]*gunicorn", cpu)
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in cpu
    assert re.search(r"pip install [^\n]*'\.\[all,gpu\]'[^\n]*gunicorn", gpu)
    assert "download.pytorch.org/whl/cpu" not in gpu, "the GPU image needs the CUDA build of torch"
    for text in (cpu, gpu):
        # Editable from /app: carml/db/migrate.py finds migrations/ next to the package, which no wheel holds.
        assert re.search(r"pip install --no-deps -e \.", text)


def test_dockerfile_settings_and_user(dockerfile: str) -> None:
    for stage in ("cpu", "gpu"):
        text = stage_text(dockerfile, stage)
        env = dict(re.findall(r"\b(CARML_[A-Z0-9_]+)=(\S+)", text))
        assert env["CARML_MANIFEST_DIRS"] == "/app/manifests", stage
        assert env["CARML_CACHE_DIR"] == "/var/cache/carml", stage
        assert set(env) <= setting_names(), stage
        assert re.search(r"^WORKDIR\s+/app\s*$", text, re.MULTILINE), stage
        users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
        assert users and users[-1] not in {"root", "0"}, f"{stage}: runs as root"
        assert re.search(r"^COPY\s+manifests\s+\./manifests", text, re.MULTILINE), stage
        assert re.search(r"^COPY\s+migrations\s+\./migrations", text, re.MULTILINE), stage


def test_dockerfile_bakes_in_no_secret(dockerfile: str) -> None:
    for secret in ("CARML_S3_ACCESS_KEY", "CARML_S3_SECRET_KEY", "CARML_DATABASE_URL", "PASSWORD"):
        assert secret not in dockerfile
    assert not re.search(r"^COPY\s+\.env", dockerfile, re.MULTILINE)


def test_dockerfile_copies_what_the_project_needs(dockerfile: str) -> None:
    ignored = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = set()
    for line in re.findall(r"^COPY\s+(?!--from)(.+)$", dockerfile, re.MULTILINE):
        *srcs, _dest = line.split()
        sources.update(srcs)
    # Every package of the project (pyproject's packages.find) and the data it reads at run time.
    assert sources >= {"pyproject.toml", "README.md", "carml", "predictors", "webapp", "worker", "migrations"}
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the project"
        assert source not in ignored, f"COPY {source}: excluded by .dockerignore"
    assert {".git", ".venv"} <= set(ignored)


# ------------------------------------------------------------------ docs/deploy.md


def test_deploy_doc_covers_every_setting() -> None:
    text = DEPLOY_DOC.read_text()
    table_rows = set(re.findall(r"^\| `(CARML_[A-Z0-9_]+)` \|", text, re.MULTILINE))
    missing = setting_names() - table_rows
    assert not missing, f"docs/deploy.md's settings table lacks {sorted(missing)}"
    unknown = set(CARML_VARIABLE.findall(text)) - setting_names()
    assert not unknown, f"docs/deploy.md names variables that are no settings: {sorted(unknown)}"


def test_deploy_doc_settings_table_matches_the_help() -> None:
    text = DEPLOY_DOC.read_text()
    for field in setting_fields():
        row = re.search(rf"^\| `{field.metadata['env']}` \|.*$", text, re.MULTILINE).group(0)
        assert field.metadata["help"] in row, f"{field.metadata['env']}: the table's meaning is not the code's help"


def test_deploy_doc_names_only_real_commands() -> None:
    text = DEPLOY_DOC.read_text()
    spans = re.findall(r"`([^`\n]+)`", text)
    fenced = re.findall(r"^```\w*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    lines = [line.strip() for block in fenced for line in block.splitlines()]
    candidates = [c for c in spans + lines if c.startswith("carml ")]
    candidates += [line.split(" exec web ", 1)[1] for line in lines if " exec web carml " in line]
    assert candidates
    from carml.cli import _register, cli

    _register()
    for candidate in candidates:
        words = candidate.split()
        command = cli.get_command(click.Context(cli), words[1])
        assert command is not None, f"docs/deploy.md: `{candidate}`: no such command"
        if isinstance(command, click.Group) and len(words) > 2:
            assert command.get_command(click.Context(command), words[2]), f"docs/deploy.md: `{candidate}`"
