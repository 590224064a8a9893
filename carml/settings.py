"""Every CarML setting, read from `CARML_*` environment variables in one place.

Each setting is a dataclass field that names its variable, its parser and what it is for, so the
list below is also the reference (`carml settings` prints it). Settings are read when asked for
(`load_settings()`), never at import time, so tests and processes can change the environment first.

URLs choose the backends; with nothing set, everything runs on one machine with no server:
SQLite and a local object-store folder under `CARML_HOME`, and a server-less Celery transport.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carml.errors import CarmlError

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _text(name: str, value: str) -> str:
    return value


def _optional_text(name: str, value: str) -> str | None:
    return value or None


def _path(name: str, value: str) -> Path:
    return Path(value).expanduser()


def _user_name(name: str, value: str) -> str:
    # NB: empty is never passed here (load_settings keeps the default); spaces would make an owner nobody can type.
    if value != value.strip() or not value.isprintable():
        raise CarmlError(f"{name}={value!r}: expected a user name without spaces around it")
    return value


def _optional_path(name: str, value: str) -> Path | None:
    return Path(value).expanduser() if value else None


def _paths(name: str, value: str) -> tuple[Path, ...]:
    return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p)


def _csv(name: str, value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise CarmlError(f"{name}={value!r}: expected one of 1/0, true/false, yes/no, on/off")


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise CarmlError(f"{name}={value!r}: expected an integer") from None


def _int_at_least(minimum: int) -> Callable[[str, str], int]:
    def parse(name: str, value: str) -> int:
        number = _int(name, value)
        if number < minimum:
            raise CarmlError(f"{name}={value!r}: expected an integer of at least {minimum}")
        return number

    return parse


def _float(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise CarmlError(f"{name}={value!r}: expected a number") from None


def _prices(name: str, value: str) -> dict[str, float]:
    """`TAG=PRICE,...` (price per hour, in the deployment's currency) as a mapping."""
    prices: dict[str, float] = {}
    for part in _csv(name, value):
        tag, sep, price = part.partition("=")
        try:
            amount = float(price)
        except ValueError:
            amount = -1.0
        if not sep or not tag.strip() or amount < 0:
            raise CarmlError(f"{name}: {part!r} is not TAG=PRICE with a price of at least 0 (e.g. cpu=0.10)")
        prices[tag.strip()] = amount
    return prices


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, value: str) -> str:
        if value not in choices:
            raise CarmlError(f"{name}={value!r}: expected one of {', '.join(choices)}")
        return value

    return parse


TRACE_LEVELS = ("none", "stage", "framework")


def _env(variable: str, parse: Callable[[str, str], Any], help: str, **default: Any) -> Any:
    """A settings field bound to an environment variable."""
    return field(metadata={"env": variable, "parse": parse, "help": help}, **default)


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment. Defaults make a fresh checkout work with nothing configured."""

    home: Path = _env(
        "CARML_HOME",
        _path,
        "Folder for the embedded default: SQLite database, object store, broker queue.",
        default_factory=lambda: Path.home() / ".local" / "share" / "carml",
    )
    manifest_dirs: tuple[Path, ...] = _env(
        "CARML_MANIFEST_DIRS",
        _paths,
        "Manifest folders (each with models/ and datasets/), ':'-separated.",
        default_factory=lambda: (_PROJECT_ROOT / "manifests",),
    )
    cache_dir: Path = _env(
        "CARML_CACHE_DIR",
        _path,
        "Content-addressed cache of downloaded and unpacked artifacts.",
        default_factory=lambda: Path.home() / ".cache" / "carml",
    )
    device: str = _env("CARML_DEVICE", _text, "Where models run: auto, cpu, cuda or cuda:N.", default="auto")
    # --- service backends: URLs choose them; empty means the embedded default under `home`.
    database_url: str = _env(
        "CARML_DATABASE_URL", _text, "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB.", default=""
    )
    broker_url: str = _env(
        "CARML_BROKER_URL",
        _text,
        "redis://HOST:6379/0, amqp://..., or empty for a server-less local queue.",
        default="",
    )
    object_store_url: str = _env(
        "CARML_OBJECT_STORE", _text, "A local folder, or s3://BUCKET on the CARML_S3_* endpoint.", default=""
    )
    broker_poll_interval_s: float = _env(
        "CARML_BROKER_POLL_INTERVAL_S", _float, "Polling interval of the server-less queue.", default=0.01
    )
    job_time_limit_s: int = _env(
        "CARML_JOB_TIME_LIMIT_S",
        _int,
        "A job shard running longer than this is stopped as TIMED_OUT.",
        default=6 * 3600,
    )
    worker_heartbeat_s: int = _env(
        "CARML_WORKER_HEARTBEAT_S", _int, "How often workers record that they are alive.", default=10
    )
    worker_alive_s: int = _env(
        "CARML_WORKER_ALIVE_S", _int, "A worker silent for longer than this counts as gone.", default=60
    )
    web_host: str = _env("CARML_WEB_HOST", _text, "Address the web app listens on.", default="127.0.0.1")
    web_port: int = _env("CARML_WEB_PORT", _int, "Port the web app listens on.", default=8080)
    api_max_wait_s: int = _env(
        "CARML_API_MAX_WAIT_S",
        _int_at_least(0),
        "Longest an API request may wait for its job to end (`wait` of POST /api/v1/jobs and GET "
        "/api/v1/jobs/ID); keep it under the idle timeout of any proxy in front. 0: requests never wait.",
        default=30,
    )
    api_max_waiting: int = _env(
        "CARML_API_MAX_WAITING",
        _int_at_least(0),
        "Requests a web process lets wait for their job's end at once; more are answered at once, with the job as "
        "it is. Keep it under gunicorn's --threads, so that waiting requests never hold every thread.",
        default=8,
    )
    secret_key: str = _env(
        "CARML_SECRET_KEY",
        _text,
        "Signs web sessions; give every web process the same one (random if unset).",
        default="",
    )
    # --- accounts: the CLI acts as the operator; the embedded default creates a first admin.
    user: str = _env(
        "CARML_USER",
        _user_name,
        "User that CLI commands acting on the database directly (evaluate, predict, compare, jobs, cancel) act "
        "as: the owner of what they submit.",
        default="admin",
    )
    admin_password: str | None = _env(
        "CARML_ADMIN_PASSWORD",
        _optional_text,
        "Password of the admin user that `carml up` creates when there is no user yet (random and printed once "
        "if unset).",
        default=None,
    )
    login_max_failures_per_name: int = _env(
        "CARML_LOGIN_MAX_FAILURES_PER_NAME",
        _int_at_least(1),
        "Web logins for a user name are refused (429) after this many failures within CARML_LOGIN_WINDOW_S, "
        "known name or not.",
        default=5,
    )
    login_max_failures_per_address: int = _env(
        "CARML_LOGIN_MAX_FAILURES_PER_ADDRESS",
        _int_at_least(1),
        "Web logins from a client address are refused (429) after this many failures within "
        "CARML_LOGIN_WINDOW_S, whatever the names tried.",
        default=50,
    )
    login_window_s: int = _env(
        "CARML_LOGIN_WINDOW_S",
        _int_at_least(1),
        "How long a failed web login counts against its user name and its address.",
        default=15 * 60,
    )
    trusted_proxy_hops: int = _env(
        "CARML_TRUSTED_PROXY_HOPS",
        _int_at_least(0),
        "Reverse proxies in front of the web app whose X-Forwarded-For and X-Forwarded-Proto are believed "
        "(0: none; the client address is the connection's).",
        default=0,
    )
    # --- remote artifacts and S3/MinIO: https downloads and s3:// objects.
    http_timeout_s: int = _env("CARML_HTTP_TIMEOUT_S", _int, "Connect/read timeout of downloads.", default=30)
    url_allowlist: tuple[str, ...] = _env(
        "CARML_URL_ALLOWLIST",
        _csv,
        "Hosts or networks (CIDR) that input URLs may reach although not public.",
        default=(),
    )
    s3_endpoint: str = _env("CARML_S3_ENDPOINT", _text, "S3/MinIO endpoint, host:port.", default="127.0.0.1:9000")
    s3_access_key: str | None = _env("CARML_S3_ACCESS_KEY", _optional_text, "S3 access key.", default=None)
    s3_secret_key: str | None = _env("CARML_S3_SECRET_KEY", _optional_text, "S3 secret key.", default=None)
    s3_secure: bool = _env("CARML_S3_SECURE", _bool, "Use TLS to reach the S3 endpoint.", default=True)
    s3_region: str | None = _env("CARML_S3_REGION", _optional_text, "S3 region, if the store needs one.", default=None)
    ca_bundle: Path | None = _env(
        "CARML_CA_BUNDLE",
        _optional_path,
        "Extra CA certificates (PEM) trusted for https and S3: a private CA.",
        default=None,
    )
    artifact_max_bytes: int = _env(
        "CARML_ARTIFACT_MAX_BYTES", _int, "Downloads larger than this are refused.", default=4 * 1024**3
    )
    archive_max_members: int = _env(
        "CARML_ARCHIVE_MAX_MEMBERS", _int, "Archives with more members are refused.", default=100_000
    )
    archive_max_bytes: int = _env(
        "CARML_ARCHIVE_MAX_BYTES", _int, "Archives expanding to more bytes are refused.", default=8 * 1024**3
    )
    # --- hostile input: what users may send (uploads, prediction inputs, input URLs); see docs/security.md.
    upload_max_expanded_bytes: int = _env(
        "CARML_UPLOAD_MAX_EXPANDED_BYTES",
        _int,
        "An uploaded dataset archive expanding to more bytes is refused before anything is unpacked.",
        default=2 * 1024**3,
    )
    upload_max_members: int = _env(
        "CARML_UPLOAD_MAX_MEMBERS",
        _int,
        "An uploaded dataset archive with more members is refused before anything is unpacked.",
        default=100_000,
    )
    image_max_pixels: int = _env(
        "CARML_IMAGE_MAX_PIXELS",
        _int,
        "Images declaring more pixels (width x height) are refused before they are decoded (decompression bombs).",
        default=64_000_000,
    )

    # --- measurement: tracing, hardware sampling, cost.
    trace_level: str = _env(
        "CARML_TRACE_LEVEL",
        _choice(*TRACE_LEVELS),
        "Spans kept per job: none, stage (job, shard, batch and stage spans) or framework (plus per-operator "
        "timings from the framework's profiler).",
        default="stage",
    )
    otlp_endpoint: str = _env(
        "CARML_OTLP_ENDPOINT",
        _text,
        "OTLP/HTTP traces endpoint (e.g. http://jaeger:4318/v1/traces); empty keeps spans in the database only.",
        default="",
    )
    trace_max_spans: int = _env(
        "CARML_TRACE_MAX_SPANS",
        _int,
        "Most spans kept per shard; a longer run keeps its first batches' spans and counts the rest.",
        default=20_000,
    )
    sample_interval_s: float = _env(
        "CARML_SAMPLE_INTERVAL_S", _float, "How often workers read CPU, memory and GPU state during a run.", default=0.5
    )
    hardware_prices: dict[str, float] = _env(
        "CARML_HARDWARE_PRICES",
        _prices,
        "Price per hour of each hardware tag, TAG=PRICE,... (e.g. cpu=0.10,nvidia-h100=3.50); gives cost per "
        "1,000 items.",
        default_factory=dict,
    )
    threads: int = _env(
        "CARML_THREADS",
        _int,
        "Compute threads each model may use on a worker (0: the framework's default); `carml worker --threads`.",
        default=0,
    )

    # ------------------------------------------------------------------ derived backends
    @property
    def database(self) -> str:
        """The SQLAlchemy URL in force: the configured one, or SQLite under `home`."""
        return self.database_url or f"sqlite:///{self.home / 'carml.db'}"

    @property
    def broker(self) -> str:
        """The Celery broker URL in force: the configured one, or kombu's filesystem transport."""
        return self.broker_url or "filesystem://"

    @property
    def broker_folder(self) -> Path:
        """Where the server-less transport keeps its messages."""
        return self.home / "broker"

    @property
    def object_store(self) -> str:
        """The object store in force: s3://BUCKET, or a local folder under `home`."""
        return self.object_store_url or str(self.home / "objects")

    @property
    def embedded(self) -> bool:
        """True when no server is configured: one machine, SQLite, a local queue and a local store."""
        return not (self.database_url or self.broker_url or self.object_store_url)


def setting_fields() -> list[dataclasses.Field[Any]]:
    """The settings, in declaration order, each with its variable name and help in `metadata`."""
    return list(dataclasses.fields(Settings))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build `Settings` from the environment (or the mapping given); unset variables keep their defaults."""
    env = os.environ if environ is None else environ
    values = {}
    for setting in setting_fields():
        variable = setting.metadata["env"]
        if variable in env and (env[variable] != "" or setting.metadata["parse"] in (_text, _optional_text)):
            values[setting.name] = setting.metadata["parse"](variable, env[variable])
    return Settings(**values)
