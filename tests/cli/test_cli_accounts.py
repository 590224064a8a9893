"""`carml users` and `carml tokens`, the CLI acting as CARML_USER, and `carml up`'s first admin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carml.accounts import authenticate_token, create_user, verify_password
from carml.cli.up_commands import _show_first_admin
from carml.db.migrate import upgrade
from carml.db.models import Role
from carml.settings import Settings, load_settings


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CARML_HOME", str(tmp_path / "home"))
    for name in ("CARML_DATABASE_URL", "CARML_USER", "CARML_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    upgrade(settings.database)
    return settings


def test_users_are_created_listed_and_disabled(run_cli, settings: Settings, monkeypatch) -> None:
    assert run_cli("users", "create", "alice", "--role", "publisher")[0] == 0
    monkeypatch.setattr("click.termui.visible_prompt_func", lambda prompt: "")
    monkeypatch.setattr("click.termui.hidden_prompt_func", lambda prompt: "two words here")
    code, out, _ = run_cli("users", "create", "bob", "--password")
    assert code == 0 and "web login" in out
    assert verify_password(settings, "bob", "two words here") is not None

    code, out, _ = run_cli("users", "list", "--json")
    users = {u["name"]: u for u in json.loads(out)}
    assert users["alice"]["role"] == "publisher" and not users["alice"]["password"] and users["bob"]["password"]
    assert run_cli("users", "disable", "bob")[0] == 0
    assert verify_password(settings, "bob", "two words here") is None

    for args, message in [
        (("users", "create", "alice"), "error: user 'alice' already exists"),
        (("users", "create", "Not Valid"), "error: user name 'Not Valid'"),
        (("users", "disable", "nobody"), "error: no user named 'nobody'"),
        (("tokens", "create", "--user", "nobody"), "error: no user named 'nobody'"),
        (("tokens", "revoke", "42"), "error: no token with id 42"),
    ]:
        code, out, err = run_cli(*args)
        assert code == 1 and err.startswith(message) and len(err.strip().splitlines()) == 1, (args, err)
    code, _, err = run_cli("users", "create", "carol", "--role", "boss")
    assert code == 2 and "'boss' is not one of" in err


def test_a_token_is_printed_once_listed_by_prefix_and_revoked(run_cli, settings: Settings) -> None:
    create_user(settings, "dana")
    code, out, err = run_cli("tokens", "create", "--user", "dana", "--name", "laptop", "--expires-days", "7")
    token = out.strip()
    assert code == 0 and token.startswith("carml_") and "not shown again" in err
    assert authenticate_token(settings, token) is not None

    code, out, _ = run_cli("tokens", "list", "--user", "dana", "--json")
    [listed] = json.loads(out)
    assert listed["prefix"] == token[:12] and listed["name"] == "laptop" and listed["state"] == "active"
    assert listed["expires"] is not None and token not in out
    code, out, _ = run_cli("tokens", "list")
    assert code == 0 and "laptop" in out and token not in out

    assert run_cli("tokens", "revoke", str(listed["id"]))[0] == 0
    assert authenticate_token(settings, token) is None
    assert json.loads(run_cli("tokens", "list", "--json")[1])[0]["state"] == "revoked"
    assert run_cli("tokens", "create", "--user", "dana", "--expires-days", "0")[0] == 2


def test_carml_up_creates_and_prints_the_first_admin_once(settings: Settings, capsys) -> None:
    _show_first_admin(settings)
    shown = capsys.readouterr().err
    password = shown.split("password:", 1)[1].split()[0]
    token = shown.split("API token:", 1)[1].split()[0]
    assert verify_password(settings, "admin", password) is not None
    caller = authenticate_token(settings, token)
    assert caller is not None and caller.role == Role.ADMIN
    _show_first_admin(settings)  # the next start: the admin exists, nothing is created or shown
    assert capsys.readouterr().err == ""


def test_commands_on_the_database_act_as_carml_user(run_cli, settings: Settings, monkeypatch) -> None:
    from carml.jobs.service import get_job
    from carml.jobs.workers import register_worker

    register_worker(settings, "cpu-test@host", "cpu")  # a live worker for the tag: the job is accepted (and waits)
    monkeypatch.setenv("CARML_USER", "ops")
    code, out, err = run_cli("evaluate", "digits-cnn", "-f", "onnxruntime", "-d", "digits", "-n", "8", "--no-wait")
    assert code == 0, err
    assert get_job(settings, out.strip()).owner == "ops"
    code, out, _ = run_cli("jobs", "--owner", "ops", "--json")
    assert code == 0 and [j["owner"] for j in json.loads(out)] == ["ops"]
    assert json.loads(run_cli("jobs", "--owner", "nobody", "--json")[1]) == []
