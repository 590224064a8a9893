"""A user's client of one running service for `prediction_latency.py`: submit a PNG for a prediction, learn the
answer by waiting or polling, over `requests` or a lean standard-library client (`PlainHttp`)."""

from __future__ import annotations

import http.client
import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from service_harness import FINAL_STATES, BenchService

WAIT_S = 30  # what the client asks the API to wait at most; a prediction ends long before


class PlainHttp:
    """A lean HTTP/1.1 client on one kept-alive connection (the standard library's), for `--http plain`: what the
    service adds, without a client library's own cost. Each submission gets a fresh multipart boundary, as a
    browser's or `requests`' does."""

    def __init__(self, base_url: str, token: str):
        parsed = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=WAIT_S + 30)
        self.authorization = f"Bearer {token}"

    def post_form(self, path: str, form: dict[str, str], file: tuple[str, bytes, str]) -> tuple[int, bytes]:
        boundary = secrets.token_hex(16)
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in form.items()
        ]
        name, data, content_type = file
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        parts.append(f"{head}Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self._send("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def get(self, path: str) -> tuple[int, bytes]:
        return self._send("GET", path, None, {})

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        self.connection.request(method, path, body=body, headers={"Authorization": self.authorization, **headers})
        response = self.connection.getresponse()
        return response.status, response.read()


class ServiceClient:
    """A user's client of one running service: submit the PNG for `model`, learn the answer (`client`: "wait" asks
    the API to wait for the end, "poll" polls every `poll_ms`), with `requests` or `PlainHttp` (`http`)."""

    def __init__(
        self,
        service: BenchService,
        model: str,
        framework: str,
        png: bytes,
        client: str,
        poll_ms: float,
        http: str = "requests",
    ):
        self.model, self.framework, self.png, self.client, self.poll_s = model, framework, png, client, poll_ms / 1000
        self.session = service.session() if http == "requests" else None
        self.plain = PlainHttp(service.base_url, service.token) if http == "plain" else None
        self.jobs_url = f"{service.base_url}/api/v1/jobs"
        self.jobs_path = urlsplit(self.jobs_url).path

    def request(self) -> tuple[float, dict[str, Any], tuple[int, int]]:
        """Milliseconds from sending to knowing the answer, the final job, and (sent, seen) in epoch ns."""
        form = {"kind": "predict", "model": self.model, "framework": self.framework}
        if self.client == "wait":
            form["wait"] = str(WAIT_S)
        sent_ns, started = time.time_ns(), time.perf_counter()
        status, body = self._post(form)
        if status != 201:
            raise RuntimeError(f"submission refused ({status}): {body[:500]!r}")
        job: dict[str, Any] = json.loads(body)
        while job["status"] not in FINAL_STATES:
            if self.client == "poll":
                time.sleep(self.poll_s)
            status, body = self._get(f"/{job['id']}" + (f"?wait={WAIT_S}" if self.client == "wait" else ""))
            if status != 200:
                raise RuntimeError(f"GET of job {job['id']} answered {status}: {body[:500]!r}")
            job = json.loads(body)
        elapsed = (time.perf_counter() - started) * 1000
        if job["status"] != "succeeded":
            raise RuntimeError(f"job {job['id']} {job['status']}: {job.get('error')}")
        return elapsed, job, (sent_ns, time.time_ns())

    def _post(self, form: dict[str, str]) -> tuple[int, bytes]:
        file = ("digit.png", self.png, "image/png")
        if self.plain is not None:
            return self.plain.post_form(self.jobs_path, form, file)
        assert self.session is not None
        response = self.session.post(self.jobs_url, data=form, files={"files": file}, timeout=WAIT_S + 30)
        return response.status_code, response.content

    def _get(self, job_part: str) -> tuple[int, bytes]:
        """GET of a job: `job_part` is "/ID", with its query string if any."""
        if self.plain is not None:
            return self.plain.get(self.jobs_path + job_part)
        assert self.session is not None
        response = self.session.get(self.jobs_url + job_part, timeout=WAIT_S + 30)
        return response.status_code, response.content
