"""Shared fixtures of the job tests: a migrated PostgreSQL database with one live CPU worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from carml.db.migrate import upgrade
from carml.jobs.workers import register_worker
from carml.settings import Settings, load_settings

#: The live worker `settings` registers (tag `cpu`): pass it to run_shard and the claim.
WORKER_ID = "cpu-test@host"


@pytest.fixture()
def settings(tmp_path: Path, fresh_postgres_url: str) -> Settings:
    """Settings on a fresh, migrated PostgreSQL database, a local object store and cache under `tmp_path`, and
    `WORKER_ID` registered as a live worker (a module may define its own `settings` instead)."""
    settings = load_settings(
        {
            "CARML_HOME": str(tmp_path / "home"),
            "CARML_CACHE_DIR": str(tmp_path / "cache"),
            "CARML_OBJECT_STORE": str(tmp_path / "objects"),
            "CARML_DATABASE_URL": fresh_postgres_url,
        }
    )
    upgrade(settings.database)
    register_worker(settings, WORKER_ID, "cpu")
    return settings
