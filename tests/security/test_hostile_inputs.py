"""The hostile-input corpus: each request is refused with a 4xx whose message says why, and writes nothing.

Every case goes through the REST API (or the Try it form, which is where URLs are taken) as the caller the shared
fixtures authenticate. "Nothing written" is checked against a snapshot of every table's row count and of every
file and folder under the test's folder: the home folder, the artifact cache, the object store and the
temporary folder the app's uploads pass through.
"""

from __future__ import annotations

import html
import io
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from publishing.manifest_texts import manifest_text
from security.conftest import UPLOAD_MAX_MEMBERS, everything_written
from security.hostile_files import (
    csv_text,
    digits_folder_zip,
    npz_bomb,
    npz_with_pickle,
    png,
    png_bomb,
    png_header_bomb,
    tar_member,
    tar_of,
    with_declared_size,
    zip_of,
)
from werkzeug.test import TestResponse

from carml.settings import Settings

# Pillow warns about the bombs it opens (their headers only); CarML refuses them, which is what is checked here.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
UNPICKLED_MARKER = "unpickled"  # a folder an NPZ's pickle would create under the test's folder


@dataclass
class Sender:
    """Sends one hostile request the way a client would."""

    client: FlaskClient
    server: str  # the allow-listed web server
    folder: Path  # the test's folder
    csrf_token: str = ""

    def upload(self, data: bytes, filename: str, name: str = "hostile") -> TestResponse:
        form = {"name": name, "file": (io.BytesIO(data), filename)}
        return self.client.post("/api/v1/datasets", data=form, content_type="multipart/form-data")

    def upload_form(self, data: bytes, filename: str, name: str = "hostile") -> TestResponse:
        """The web page's upload form."""
        form = {"csrf_token": self.csrf_token, "name": name, "file": (io.BytesIO(data), filename)}
        return self.client.post("/datasets/upload", data=form, content_type="multipart/form-data")

    def evaluate(self, **changes: Any) -> TestResponse:
        body = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits"}
        return self.client.post("/api/v1/jobs", json={**body, **changes})

    def predict(self, data: bytes, filename: str = "input.png", **changes: str) -> TestResponse:
        form = {"kind": "predict", "model": "digits-cnn", "framework": "onnxruntime", **changes}
        form["files"] = (io.BytesIO(data), filename)  # type: ignore[assignment]
        return self.client.post("/api/v1/jobs", data=form, content_type="multipart/form-data")

    def get(self, path: str) -> TestResponse:
        return self.client.get(path)

    def publish(self, text: str, content_type: str = "application/yaml") -> TestResponse:
        """POST /api/v1/models: a model manifest's text (the caller is an admin, so only the text is at fault)."""
        return self.client.post("/api/v1/models", data=text, content_type=content_type)

    def try_url(self, url: str) -> TestResponse:
        """The Try it form with an input URL (the web page is where URLs are fetched)."""
        form = {"csrf_token": self.csrf_token, "model": "digits-cnn", "framework": "onnxruntime", "url": url}
        return self.client.post("/try", data={**form, "hardware_tag": "cpu"})


@dataclass(frozen=True)
class Hostile:
    send: Callable[[Sender], TestResponse]
    status: int
    says: str  # a fragment the message must contain: the reason in the user's words
    field: str | None = None  # the request field the API error names
    page: bool = False  # a web form (HTML answer) rather than the API (JSON error)


def _tar(*members: tuple[str, bytes, bytes, str]) -> bytes:
    return tar_of([(tar_member(name, kind, link), data) for name, data, kind, link in members])


def _ssrf(url: str, says: str) -> Hostile:
    return Hostile(lambda s: s.try_url(url), 400, says, page=True)


def _redirect(path: str, says: str) -> Hostile:
    return Hostile(lambda s: s.try_url(s.server + path), 400, says, page=True)


def _upload(data: Callable[[], bytes], filename: str, says: str, field: str = "file", name: str = "hostile") -> Hostile:
    return Hostile(lambda s: s.upload(data(), filename, name), 400, says, field)


def _query(path: str, says: str, field: str | None, status: int = 400) -> Hostile:
    return Hostile(lambda s: s.get(path), status, says, field)


def _publish(text: Callable[[], str], says: str, field: str | None, status: int = 400) -> Hostile:
    return Hostile(lambda s: s.publish(text()), status, says, field)


def _billion_laughs() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


SQL = "x' OR '1'='1"
DROP = "1; DROP TABLE jobs; --"
UNION = "digits' UNION SELECT name, password_hash FROM users --"

CASES: dict[str, Hostile] = {
    # --- input URLs: only http(s), only public addresses (v4, v6, mapped, odd spellings), redirects re-checked
    "url-loopback": _ssrf("http://127.0.0.1/x.png", "127.0.0.1, a loopback address"),
    "url-localhost": _ssrf("http://localhost:6379/x.png", "a loopback address"),
    "url-loopback-v6": _ssrf("http://[::1]/x.png", "a loopback address"),
    "url-v4-mapped-v6": _ssrf("http://[::ffff:127.0.0.1]/x.png", "a loopback address"),
    "url-private": _ssrf("http://10.0.0.7/x.png", "a private address"),
    "url-cloud-metadata": _ssrf("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    "url-unspecified": _ssrf("http://0.0.0.0:8080/", "0.0.0.0, an unspecified address"),
    "url-decimal-ip": _ssrf("http://2130706433/x.png", "resolves to 127.0.0.1, a loopback address"),
    "url-octal-ip": _ssrf("http://0177.0.0.1/x.png", "resolves to 127.0.0.1, a loopback address"),
    "url-hex-ip": _ssrf("http://0x7f000001/x.png", "resolves to 127.0.0.1, a loopback address"),
    "url-userinfo-trick": _ssrf("http://example.org@127.0.0.1/x.png", "a loopback address"),
    "url-shared-address-space": _ssrf("http://100.64.0.1/x.png", "a non-public address"),
    "url-file": _ssrf("file:///etc/passwd", "only http and https URLs"),
    "url-gopher": _ssrf("gopher://127.0.0.1:6379/_FLUSHALL", "only http and https URLs"),
    "url-ftp": _ssrf("ftp://example.org/x.png", "only http and https URLs"),
    "url-redirect-to-loopback": _redirect("/to-loopback", "127.0.0.1, a loopback address"),
    "url-redirect-to-metadata": _redirect("/to-metadata", "169.254.169.254, a link-local address"),
    "url-redirect-to-mapped-private": _redirect("/to-mapped", "10.0.0.1, a private address"),
    "url-redirect-to-file": _redirect("/to-file", "only http and https URLs"),
    "url-not-an-image": _redirect("/page.html", "is text/html, not an image or audio file"),
    "url-oversize": _redirect("/huge.png", "at most 67108864 are fetched"),
    "url-decompression-bomb": _redirect("/bomb.png", "10000x10000 = 100000000 pixels"),
    # --- bodies and content types
    "body-oversize": Hostile(lambda s: s.upload(b"\0" * (3 * 2**20), "big.csv"), 413, "larger than the 2 MiB limit"),
    "type-evaluate-as-text": Hostile(
        lambda s: s.client.post("/api/v1/jobs", data="kind=evaluate", content_type="text/plain"),
        415,
        "send evaluate jobs as application/json",
    ),
    "type-upload-as-json": Hostile(
        lambda s: s.client.post("/api/v1/datasets", json={"name": "x"}), 415, "as multipart/form-data"
    ),
    "type-comparison-as-form": Hostile(
        lambda s: s.client.post("/api/v1/comparisons", data={"models": "digits-cnn"}), 415, "application/json"
    ),
    "json-nested-too-deeply": Hostile(
        lambda s: s.client.post("/api/v1/jobs", data="[" * 100_000 + "]" * 100_000, content_type="application/json"),
        400,
        "nested too deeply",
    ),
    # --- archives: escapes, links, special files and bombs, refused before anything is unpacked
    "zip-slip-dotdot": _upload(lambda: digits_folder_zip({"../../evil.png": png()}), "d.zip", "a '..' component"),
    "zip-slip-absolute": _upload(lambda: digits_folder_zip({"/tmp/evil.png": png()}), "d.zip", "an absolute path"),
    "zip-slip-backslash": _upload(lambda: digits_folder_zip({"..\\..\\evil.png": png()}), "d.zip", "'..' component"),
    "zip-slip-web-form": Hostile(
        lambda s: s.upload_form(digits_folder_zip({"../../evil.png": png()}), "d.zip"), 400, "'..' component", page=True
    ),
    "zip-symlink": _upload(
        lambda: zip_of({"data/0/a.png": png()}, links={"data/0/b.png": "/etc/passwd"}), "d.zip", "a symbolic link"
    ),
    "zip-member-count": _upload(
        lambda: zip_of({f"data/0/{i}.png": b"" for i in range(UPLOAD_MAX_MEMBERS + 1)}),
        "d.zip",
        f"past the limit of {UPLOAD_MAX_MEMBERS} members (CARML_UPLOAD_MAX_MEMBERS)",
    ),
    "zip-expanded-size": _upload(
        lambda: with_declared_size(digits_folder_zip({"data/1/big.png": png()}), "data/1/big.png", 3 * 1024**3),
        "d.zip",
        "past the limit of 2147483648 bytes (CARML_UPLOAD_MAX_EXPANDED_BYTES)",
    ),
    "zip-nested": _upload(
        lambda: zip_of({f"data/0/{i}.zip": digits_folder_zip() for i in range(3)}),
        "d.zip",
        "holds no usable items (0/0.zip: not an image file (.zip)",
    ),
    "tar-device": _upload(lambda: _tar(("data/0/dev", b"", tarfile.CHRTYPE, "")), "d.tar.gz", "a device, FIFO"),
    "tar-fifo": _upload(lambda: _tar(("data/0/pipe", b"", tarfile.FIFOTYPE, "")), "d.tgz", "a device, FIFO"),
    "tar-symlink": _upload(
        lambda: _tar(("data/0/a.png", png(), tarfile.REGTYPE, ""), ("data/0/b.png", b"", tarfile.SYMTYPE, "/etc")),
        "d.tar.gz",
        "is a symbolic link",
    ),
    "tar-hardlink": _upload(
        lambda: _tar(("data/0/b.png", b"", tarfile.LNKTYPE, "/etc/passwd")), "d.tar.gz", "is a hard link"
    ),
    "tar-slip": _upload(lambda: _tar(("data/../../evil.png", png(), tarfile.REGTYPE, "")), "d.tgz", "'..' component"),
    # --- decompression bombs: in a dataset, as a prediction input (a URL input is above)
    "image-bomb-in-dataset": _upload(
        lambda: digits_folder_zip({"data/1/bomb.png": png_bomb(10_000, 10_000)}),
        "d.zip",
        "data/1/bomb.png: the image declares 10000x10000 = 100000000 pixels; at most 64000000 are accepted",
    ),
    "image-bomb-prediction": Hostile(
        lambda s: s.predict(png_bomb(10_000, 10_000)), 400, "(CARML_IMAGE_MAX_PIXELS)", "inputs"
    ),
    "image-bomb-past-pillow": Hostile(
        lambda s: s.predict(png_header_bomb(30_000, 30_000), "huge.png"),
        400,
        "Image size (900000000 pixels) exceeds limit",
        "inputs",
    ),
    # --- CSV and NPZ datasets
    "csv-formula-label": _upload(
        lambda: csv_text(["label,x", '=HYPERLINK("http://evil"),1', "ok,2"]), "d.csv", "like a spreadsheet formula"
    ),
    "csv-formula-at": _upload(lambda: csv_text(["label,x", "@SUM(1+1),1"]), "d.csv", "like a spreadsheet formula"),
    "csv-nul-byte": _upload(lambda: csv_text(["label,x", "a\0b,1", "c,2"]), "d.csv", "contains control characters"),
    "csv-absurd-field": _upload(
        lambda: csv_text(["label,x", "a," + "9" * 200_000]), "d.csv", "field larger than field limit"
    ),
    "csv-not-utf8": _upload(lambda: b"label,x\n\xff\xfe,1\n", "d.csv", "is not UTF-8 text"),
    "npz-pickled-object-array": Hostile(
        lambda s: s.upload(npz_with_pickle(s.folder / UNPICKLED_MARKER), "d.npz"),
        400,
        "Object arrays cannot be loaded when allow_pickle=False",
        "file",
    ),
    "npz-bomb": _upload(npz_bomb, "d.npz", "expand to 3221225616 bytes; at most 2147483648 are accepted"),
    "class-folder-formula": _upload(
        lambda: digits_folder_zip(classes=("0", "=cmd|' /C calc'!A0")), "d.zip", "like a spreadsheet formula"
    ),
    # --- SQL-ish strings in every filter: 400s naming the field (and bound parameters underneath, tested below)
    "sql-jobs-model": _query(f"/api/v1/jobs?model={SQL}", "is not a valid name", "model"),
    "sql-jobs-hardware-tag": _query(f"/api/v1/jobs?hardware_tag={DROP}", "is not a valid name", "hardware_tag"),
    "sql-jobs-owner": _query(f"/api/v1/jobs?owner={SQL}", "is not a valid name", "owner"),
    "sql-jobs-status": _query(f"/api/v1/jobs?status={SQL}", "status must be one of", "status"),
    "sql-jobs-limit": _query(f"/api/v1/jobs?limit={DROP}", "must be a whole number", "limit"),
    "sql-report-model": _query(f"/api/v1/reports/evaluation_summary?model={SQL}", "is not a valid name", "model"),
    "sql-report-hardware": _query(f"/api/v1/reports/evaluation_summary?hardware={DROP}", "not a valid", "hardware"),
    "sql-report-since": _query(f"/api/v1/reports/evaluation_summary?since=2024-01-01{SQL}", "since", "since"),
    "sql-recommend-dataset": _query(f"/api/v1/recommendations?dataset={UNION}", "is not a valid name", "dataset"),
    "sql-recommend-task": _query(f"/api/v1/recommendations?task={SQL}", "is not one of", "task"),
    "sql-recommend-min-top1": _query(f"/api/v1/recommendations?min_top1={DROP}", "min_top1", "min_top1"),
    "sql-comparisons-owner": _query(f"/api/v1/comparisons?owner={SQL}", "is not a valid name", "owner"),
    # --- names: over-long, control characters, unicode look-alikes, paths
    "name-over-long-model": Hostile(lambda s: s.evaluate(model="m" * 5000), 400, "longer than 100 characters", "model"),
    "name-over-long-upload": _upload(
        lambda: digits_folder_zip(), "d.zip", "longer than 100 characters", "name", "a" * 101
    ),
    "name-nul-model": Hostile(lambda s: s.evaluate(model="digits\0cnn"), 400, "control characters", "model"),
    "name-newline-upload": _upload(lambda: digits_folder_zip(), "d.zip", "control characters", "name", "mine\nx"),
    "name-cyrillic-lookalike": Hostile(lambda s: s.evaluate(model="d\u0456gits-cnn"), 400, "not a valid name", "model"),
    "name-right-to-left-override": Hostile(
        lambda s: s.evaluate(dataset="digits\u202egnp"), 400, "not a valid name", "dataset"
    ),
    "name-fullwidth-dots": Hostile(
        lambda s: s.evaluate(dataset="\uff0e\uff0e/etc"), 400, "not a valid name", "dataset"
    ),
    "path-dataset-traversal": Hostile(
        lambda s: s.evaluate(dataset="../../etc/passwd"), 400, "not a valid name", "dataset"
    ),
    "path-dataset-absolute": Hostile(lambda s: s.evaluate(dataset="/etc/passwd"), 400, "not a valid name", "dataset"),
    "path-dataset-manifest-file": Hostile(
        lambda s: s.evaluate(dataset="digits.yaml"), 400, "must be a name, not a manifest file", "dataset"
    ),
    "path-upload-name": _upload(lambda: digits_folder_zip(), "d.zip", "lowercase identifier", "name", "../up"),
    # An encoded '/' is decoded before routing, so such a path matches no route at all; a backslash reaches the
    # route's own check.
    "path-encoded-slashes": _query("/api/v1/jobs/..%2F..%2Fetc%2Fpasswd", "no such endpoint", None, 404),
    "path-param-job": _query("/api/v1/jobs/..%5C..%5Cetc%5Cpasswd", "no job", "job_id", 404),
    "path-param-job-sql": _query("/api/v1/jobs/1'%20OR%20'1'%3D'1", "no job", "job_id", 404),
    "path-param-results-sql": _query(f"/api/v1/results/{DROP}", "no job", "job_id", 404),
    "path-param-dataset": _query("/api/v1/datasets/..%5C..%5Cetc%5Cpasswd", "unknown dataset", "name", 404),
    "path-param-comparison": _query("/api/v1/comparisons/..%5C..%5Cetc", "no comparison", "comparison_id", 404),
    "path-param-report": _query("/api/v1/reports/..%5C..%5Cetc%5Cpasswd", "no report", "name", 404),
    "path-param-model": _query("/api/v1/models/..%5C..%5Cetc%5Cpasswd", "unknown model", "name", 404),
    "path-param-sample": Hostile(lambda s: s.get("/samples/..%5C..%5Cetc%5Cpasswd"), 404, "no sample named", page=True),
    # --- published model manifests: no server files, the safe YAML loader, the size cap, the folders' models
    "publish-relative-artifact": _publish(
        lambda: manifest_text(model_url="../../etc/model.onnx"), "is a local file", "artifacts[0].url"
    ),
    "publish-file-url-artifact": _publish(
        lambda: manifest_text(model_url="file:///etc/passwd"), "is a local file", "artifacts[0].url"
    ),
    "publish-absolute-labels": _publish(
        lambda: manifest_text(labels={"file": {"url": "/etc/passwd"}}),
        "'/etc/passwd' is a local file",
        "outputs[0].labels.file.url",
    ),
    "publish-plain-http-artifact": _publish(
        lambda: manifest_text(model_url="http://169.254.169.254/model.onnx"), "uses https, s3, pkg", "artifacts[0].url"
    ),
    "publish-pkg-traversal": _publish(
        lambda: manifest_text(model_url="pkg://carml/../../etc/x.onnx"), "'..'", "artifacts[0].url"
    ),
    "publish-python-object-tag": _publish(
        lambda: "!!python/object/apply:os.system ['touch pwned']\n", "not valid YAML", "manifest"
    ),
    "publish-billion-laughs": _publish(_billion_laughs, "(billion laughs)", "manifest"),
    "publish-duplicate-keys": _publish(lambda: manifest_text() + "name: other\n", "duplicate key 'name'", "manifest"),
    "publish-oversize": _publish(
        lambda: manifest_text() + "#" * (300 * 1024) + "\n", "at most 262144 bytes", "manifest", 413
    ),
    "publish-a-dataset": _publish(lambda: "kind: dataset\nname: digits\n", "only model manifests", "kind"),
    "publish-over-a-folder-model": _publish(
        lambda: manifest_text("digits-cnn"), "is defined by the manifest", "name", 409
    ),
    "publish-as-form": Hostile(
        lambda s: s.client.post("/api/v1/models", data={"manifest": manifest_text()}), 415, "application/yaml"
    ),
    "publish-remove-folder-model": Hostile(
        lambda s: s.client.delete("/api/v1/models/digits-cnn"), 409, "remove the file", "name"
    ),
    "publish-remove-traversal": Hostile(
        lambda s: s.client.delete("/api/v1/models/..%5C..%5Cetc%5Cpasswd"), 404, "no published model", "name"
    ),
}


GROUPS = {
    "input-urls": ("url-",),
    "uploaded-files": ("body-", "zip-", "tar-", "image-", "csv-", "npz-", "class-"),
    "requests": ("type-", "json-", "sql-", "name-", "path-"),
    "published-models": ("publish-",),
}


def _message(response: TestResponse, case: Hostile) -> str:
    if case.page:
        return html.unescape(response.get_data(as_text=True))
    assert response.is_json, response.get_data(as_text=True)[:300]
    error = response.json["error"]
    assert error["status"] == response.status_code
    assert error["field"] == case.field, error
    return str(error["message"])


def _check(case: Hostile, sender: Sender, settings: Settings) -> None:
    before = everything_written(settings, sender.folder)

    response = case.send(sender)

    assert response.status_code == case.status, response.get_data(as_text=True)[:500]
    assert case.says in _message(response, case)
    assert everything_written(settings, sender.folder) == before
    assert not (sender.folder / UNPICKLED_MARKER).exists()


# One test per group, one subtest per case: the app and its database are built once per group, not per case.
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_hostile_inputs_are_refused_clearly_and_write_nothing(
    group: str,
    subtests: pytest.Subtests,
    client: FlaskClient,
    settings: Settings,
    hostile_settings: Settings,
    allowed_server: str,
    tmp_path: Path,
) -> None:
    found = _CSRF.search(client.get("/try").get_data(as_text=True))
    assert found, "no CSRF token on /try"
    sender = Sender(client, allowed_server, tmp_path, csrf_token=found.group(1))
    for name in sorted(n for n in CASES if n.startswith(GROUPS[group])):
        with subtests.test(msg=name):
            _check(CASES[name], sender, settings)


def test_the_corpus_has_forty_cases_or_more_each_in_one_group() -> None:
    assert len(CASES) >= 40
    for name in CASES:
        assert [g for g, prefixes in GROUPS.items() if name.startswith(prefixes)], f"{name} is in no group"


def test_the_snapshot_sees_what_an_accepted_request_writes(
    client: FlaskClient, settings: Settings, hostile_settings: Settings, allowed_server: str, tmp_path: Path
) -> None:
    """The control for the corpus: an acceptable upload and prediction change the snapshot."""
    sender = Sender(client, allowed_server, tmp_path)
    before = everything_written(settings, tmp_path)
    assert sender.upload(digits_folder_zip(), "d.zip", "fine").status_code == 201
    assert sender.predict(png()).status_code == 201
    after = everything_written(settings, tmp_path)
    assert after.rows["datasets"] == before.rows["datasets"] + 1 and after.rows["jobs"] == before.rows["jobs"] + 1
    assert any(f.startswith("objects/datasets/fine/") for f in after.files - before.files)
    # The prediction's small input is kept in its job row (carml.jobs.prediction_io), counted in `jobs` above.
    assert not any(f.startswith("objects/jobs/") for f in after.files - before.files)
