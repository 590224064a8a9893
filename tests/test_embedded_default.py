"""The README's run command on the embedded default: `carml up` with no CARML_* setting, then a first job."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from support import PROJECT_ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_carml_up_serves_and_runs_a_first_evaluation(tmp_path: Path) -> None:
    # Only the embedded default: no database, broker or object store configured, a private home folder.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARML_")}
    env.update(CARML_HOME=str(tmp_path / "home"), CARML_CACHE_DIR=str(tmp_path / "cache"), CARML_WORKER_HEARTBEAT_S="1")
    port = _free_port()
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        [sys.executable, "-m", "carml", "up", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            printed = (tmp_path / "up.log").read_text()
            assert up.poll() is None and time.monotonic() < deadline, printed[-3000:]
            # The first start creates the user admin and shows its password and API token, once.
            token = re.search(r"API token: (carml_\S+)", printed)
            try:
                workers = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/workers?alive=true")
                if token:
                    workers.add_header("Authorization", f"Bearer {token.group(1)}")
                with urllib.request.urlopen(workers, timeout=2) as reply:
                    if json.load(reply)["workers"]:
                        break
            except OSError:
                pass
            time.sleep(0.3)
        assert printed.count("API token:") == 1 and re.search(r"password: +\S{12,}", printed)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "carml",
                "evaluate",
                "digits-cnn",
                "-f",
                "onnxruntime",
                "-d",
                "digits-png",
                "--json",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["status"] == "succeeded" and summary["items"] == 360 and summary["top1"] > 0.95
        assert summary["owner"] == "admin"  # the CLI acts as CARML_USER, by default admin
        assert (tmp_path / "home" / "carml.db").is_file() and any((tmp_path / "home" / "objects").rglob("*.jsonl"))
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
            raise
    # Stopping `carml up` stops its worker too: it signs off instead of lingering as a live worker.
    from carml.jobs.workers import live_workers
    from carml.settings import load_settings

    assert live_workers(load_settings(env)) == []
