"""Publishing models through the service, in this process: who may publish, replace and remove what, which
manifests are refused and why, and the catalog that serves published models beside the manifest folders."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from publishing.manifest_texts import LABEL_NAMES, manifest_text, sha256_of
from sqlalchemy import func, select
from support import MANIFESTS

from carml.accounts import AccountError, Caller
from carml.catalog import Catalog
from carml.db.migrate import upgrade
from carml.db.models import PublishedModel, RegisteredModel, Role
from carml.db.session import session_scope
from carml.jobs.service import (
    EvaluationRequest,
    JobRequestError,
    cancel_job,
    plan_evaluation,
    record_evaluation,
    submit_evaluation,
)
from carml.jobs.workers import register_worker
from carml.publishing import (
    MAX_PUBLISHED_BYTES,
    Outcome,
    PublishError,
    list_published,
    publish_model,
    remove_model,
    service_catalog,
)
from carml.publishing import catalog as published_catalog
from carml.settings import Settings, load_settings

ALICE = Caller("alice", Role.PUBLISHER)
BOB = Caller("bob", Role.PUBLISHER)
CAROL = Caller("carol", Role.USER)
ADMIN = Caller("root", Role.ADMIN)


def _settings(tmp_path: Path, database: str | None = None) -> Settings:
    env = {"CARML_HOME": str(tmp_path / "home"), "CARML_CACHE_DIR": str(tmp_path / "cache")}
    settings = load_settings({**env, **({"CARML_DATABASE_URL": database} if database else {})})
    upgrade(settings.database)
    register_worker(settings, "cpu-test@host", "cpu")  # jobs for "cpu" are accepted (and wait: nothing runs them)
    return settings


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path)


def _rows(settings: Settings) -> int:
    with session_scope(settings.database) as session:
        return session.scalar(select(func.count()).select_from(PublishedModel)) or 0


def _request(model: str) -> EvaluationRequest:
    return EvaluationRequest(model=model, framework="onnxruntime", dataset="digits", limit=8, owner="alice")


def _queue(settings: Settings, model: str) -> str:
    return submit_evaluation(settings, _request(model), lambda *_: None)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_publisher_publishes_replaces_and_removes_a_model(backend: str, tmp_path: Path, request) -> None:
    database = request.getfixturevalue("fresh_postgres_url") if backend == "postgresql" else None
    settings = _settings(tmp_path, database)

    created = publish_model(settings, ALICE, manifest_text())
    assert created.outcome == Outcome.CREATED and created.model.owner == "alice"
    catalog = service_catalog(settings)
    loaded = catalog.model("digits-published")
    publication = catalog.publication(loaded)
    assert publication is not None and publication.owner == "alice"
    assert loaded.digest == created.model.manifest_sha256 and loaded.manifest.outputs[0].labels.names == LABEL_NAMES
    assert catalog.publication(catalog.model("digits-cnn", "onnxruntime")) is None  # a manifest file's model
    assert "digits-published" not in {m.manifest.name for m in Catalog.load(settings.manifest_dirs).models}

    again = publish_model(settings, ALICE, manifest_text())  # a retried request changes nothing
    assert again.outcome == Outcome.UNCHANGED and again.model == created.model

    replaced = publish_model(settings, ALICE, manifest_text(version="1.1.0"))
    assert replaced.outcome == Outcome.REPLACED and replaced.model.version == "1.1.0"
    assert replaced.model.manifest_sha256 != created.model.manifest_sha256
    assert service_catalog(settings).model("digits-published").manifest.version == "1.1.0"
    assert [m.key for m in list_published(settings)] == ["digits-published@onnxruntime"]

    removed = remove_model(settings, ALICE, "digits-published")
    assert removed.version == "1.1.0" and _rows(settings) == 0
    assert "digits-published" not in {m.manifest.name for m in service_catalog(settings).models}


def test_only_the_publisher_or_an_admin_replaces_or_removes_a_model(settings: Settings) -> None:
    publish_model(settings, ALICE, manifest_text())

    with pytest.raises(PublishError, match="already published by alice; only they or an admin") as taken:
        publish_model(settings, BOB, manifest_text(version="2.0.0"))
    assert (taken.value.status, taken.value.field) == (409, "name")
    with pytest.raises(PublishError, match="published by alice; only they or an admin may remove it") as other:
        remove_model(settings, BOB, "digits-published")
    assert other.value.status == 403

    by_admin = publish_model(settings, ADMIN, manifest_text(version="2.0.0"))
    assert by_admin.outcome == Outcome.REPLACED and by_admin.model.owner == "alice"  # replaced, not taken over
    assert remove_model(settings, ADMIN, "digits-published").owner == "alice"
    assert _rows(settings) == 0


def test_a_user_may_neither_publish_nor_remove(settings: Settings) -> None:
    publish_model(settings, ALICE, manifest_text())
    with pytest.raises(AccountError, match="publishing a model needs the publisher role; carol has the role user") as e:
        publish_model(settings, CAROL, manifest_text(name="mine"))
    assert e.value.status == 403
    with pytest.raises(AccountError, match="removing a model needs the publisher role") as e:
        remove_model(settings, CAROL, "digits-published")
    assert e.value.status == 403
    assert [m.name for m in list_published(settings)] == ["digits-published"]


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"model_url": "digits-cnn/digits-cnn.onnx"}, "artifacts[0].url", "is a local file: a published manifest"),
        ({"model_url": "/srv/models/x.onnx"}, "artifacts[0].url", "is a local file"),
        ({"model_url": "file:///etc/passwd.onnx"}, "artifacts[0].url", "is a local file"),
        ({"model_url": "http://models.example.org/x.onnx"}, "artifacts[0].url", "uses https, s3, pkg"),
        ({"model_url": "gs://bucket/x.onnx"}, "artifacts[0].url", "unsupported URL scheme 'gs'"),
        ({"labels": {"file": {"url": "labels.txt"}}}, "outputs[0].labels.file.url", "is a local file"),
        ({"model_url": "https://models.example.org/x.pt"}, "artifacts[0].url", "onnxruntime loads files ending in"),
        ({"framework": {"name": "caffe"}}, "framework.name", "unknown framework 'caffe'"),
        ({"version": "one"}, "version", "String should match pattern"),
        ({"name": "Bad Name"}, "name", "String should match pattern"),
    ],
)
def test_manifests_that_cannot_be_published_name_the_field_at_fault(
    settings: Settings, options: dict, field: str, says: str
) -> None:
    with pytest.raises(PublishError) as refused:
        publish_model(settings, ALICE, manifest_text(**options))
    assert (refused.value.status, refused.value.field) == (400, field)
    assert says in str(refused.value) and "manifest:" in str(refused.value)
    assert _rows(settings) == 0


@pytest.mark.parametrize(
    ("store", "url", "refused"),
    [
        ("s3://carml-store", "s3://carml-store/datasets/mine/0a1b/labels.txt", True),
        ("s3://Carml-Store/", "s3://carml-store/jobs/x/inputs/000-a.png", True),
        ("s3://carml-store/service", "s3://carml-store/service/datasets/mine/0a1b/labels.txt", True),
        ("s3://carml-store/service", "s3://carml-store/service-models/labels.txt", False),
        ("s3://carml-store", "s3://models/digits/labels.txt", False),
    ],
)
def test_files_in_the_services_own_object_store_cannot_be_published(
    settings: Settings, store: str, url: str, refused: bool
) -> None:
    """Workers read s3:// files with the service's credentials: its own store holds other users' files."""
    in_store = replace(settings, object_store_url=store)
    text = manifest_text(labels={"file": {"url": url, "sha256": "0" * 64}})
    if not refused:
        assert publish_model(in_store, ALICE, text).outcome == Outcome.CREATED
        return
    with pytest.raises(PublishError, match="is in the service's own object store") as e:
        publish_model(in_store, ALICE, text)
    assert (e.value.status, e.value.field) == (400, "outputs[0].labels.file.url")
    assert _rows(settings) == 0


def _billion_laughs(levels: int = 6) -> str:
    """Aliases of aliases: a few lines that expand to 10**levels nodes."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "status", "field", "says"),
    [
        ("", 400, "manifest", "the manifest is empty"),
        ("name: [\n", 400, "manifest", "not valid YAML"),
        ("- a list\n", 400, "manifest", "expected a mapping of fields at the top level"),
        ("kind: dataset\nname: x\n", 400, "kind", "only model manifests are published"),
        ("name: x\nname: y\n", 400, "manifest", "duplicate key 'name'"),
        ("!!python/object/apply:os.system ['true']\n", 400, "manifest", "not valid YAML"),
        (_billion_laughs(), 400, "manifest", "billion laughs"),
        ("x: " + "y" * MAX_PUBLISHED_BYTES, 413, "manifest", "published manifests are at most 262144 bytes"),
        ("name: \ud800\n", 400, "manifest", "not UTF-8 text"),
        ("name: a\x00b\n", 400, "manifest", "not valid YAML: unacceptable character #x0000"),
    ],
)
def test_texts_that_are_not_manifests_are_refused(settings: Settings, text: str, status: int, field, says) -> None:
    with pytest.raises(PublishError) as refused:
        publish_model(settings, ALICE, text)
    assert (refused.value.status, refused.value.field) == (status, field)
    assert says in str(refused.value)
    assert _rows(settings) == 0


def test_a_model_of_the_manifest_folders_can_be_neither_published_over_nor_removed(settings: Settings) -> None:
    for framework in ("onnxruntime", "pytorch"):
        model_url = f"https://models.example.org/digits-cnn.{'onnx' if framework == 'onnxruntime' else 'pt'}"
        with pytest.raises(PublishError, match="is defined by the manifest file manifests/models/digits-cnn-") as e:
            publish_model(settings, ADMIN, manifest_text("digits-cnn", framework, model_url=model_url))
        assert (e.value.status, e.value.field) == (409, "name")
    with pytest.raises(PublishError, match="not published through the service: remove the file") as refused:
        remove_model(settings, ADMIN, "digits-cnn", "onnxruntime")
    assert refused.value.status == 409 and str(MANIFESTS.parent) not in str(refused.value)  # no server paths
    with pytest.raises(PublishError, match="no published model 'nothing'") as unknown:
        remove_model(settings, ALICE, "nothing")
    assert (unknown.value.status, unknown.value.field) == (404, "name")


def test_removing_a_model_published_for_several_frameworks_needs_the_framework(settings: Settings) -> None:
    publish_model(settings, ALICE, manifest_text("twin"))
    publish_model(settings, ALICE, manifest_text("twin", "pytorch", model_url="https://models.example.org/twin.pt"))
    with pytest.raises(PublishError, match="is published for onnxruntime, pytorch; pick one") as ambiguous:
        remove_model(settings, ALICE, "twin")
    assert (ambiguous.value.status, ambiguous.value.field) == (400, "framework")
    with pytest.raises(PublishError, match="published for onnxruntime, pytorch, not tensorflow") as other:
        remove_model(settings, ALICE, "twin", "tensorflow")
    assert (other.value.status, other.value.field) == (404, "framework")
    assert remove_model(settings, ALICE, "twin", "pytorch").framework == "pytorch"
    assert remove_model(settings, ALICE, "twin").framework == "onnxruntime"


def test_queued_jobs_block_replacing_and_removing_until_they_end(settings: Settings) -> None:
    publish_model(settings, ALICE, manifest_text())
    job_id = _queue(settings, "digits-published")
    with pytest.raises(PublishError, match="1 queued or running job\\(s\\) use digits-published@onnxruntime") as busy:
        publish_model(settings, ALICE, manifest_text(version="1.0.1"))
    assert busy.value.status == 409
    with pytest.raises(PublishError, match="queued or running") as busy:
        remove_model(settings, ALICE, "digits-published")
    assert busy.value.status == 409
    assert publish_model(settings, ALICE, manifest_text()).outcome == Outcome.UNCHANGED  # the same text is no change

    cancel_job(settings, job_id)
    assert publish_model(settings, ALICE, manifest_text(version="1.0.1")).outcome == Outcome.REPLACED
    removed = remove_model(settings, ALICE, "digits-published")
    with session_scope(settings.database) as session:  # the job's history keeps the manifest it was submitted with
        digests = set(
            session.scalars(select(RegisteredModel.manifest_sha256).where(RegisteredModel.name == removed.name))
        )
    assert len(digests) == 1 and removed.manifest_sha256 not in digests
    with pytest.raises(JobRequestError, match="unknown model 'digits-published'"):
        _queue(settings, "digits-published")


def test_a_job_resolved_before_a_replacement_or_removal_is_refused_not_recorded(settings: Settings) -> None:
    publish_model(settings, ALICE, manifest_text())
    plan = plan_evaluation(settings, _request("digits-published"))  # resolved: the text published now
    publish_model(settings, ALICE, manifest_text(version="1.0.1"))  # replaced before the job is recorded
    refused = pytest.raises(JobRequestError, match="was replaced or removed while this job was being submitted")
    with refused as e, session_scope(settings.database) as session:
        record_evaluation(session, plan)
    assert (e.value.status, e.value.field) == (409, "model")

    plan = plan_evaluation(settings, _request("digits-published"))
    remove_model(settings, ALICE, "digits-published")
    with pytest.raises(JobRequestError, match="replaced or removed"), session_scope(settings.database) as session:
        record_evaluation(session, plan)
    with session_scope(settings.database) as session:
        assert session.scalar(select(func.count()).select_from(RegisteredModel)) == 0  # nothing half-written


def test_a_replacement_waits_for_a_job_being_recorded_then_counts_it(fresh_postgres_url: str, tmp_path: Path) -> None:
    settings = _settings(tmp_path, fresh_postgres_url)
    publish_model(settings, ALICE, manifest_text())
    plan = plan_evaluation(settings, _request("digits-published"))
    refused: list[PublishError] = []

    def replace_it() -> None:
        try:
            publish_model(settings, ALICE, manifest_text(version="1.0.1"))
        except PublishError as exc:
            refused.append(exc)

    replacing = threading.Thread(target=replace_it)
    with session_scope(settings.database) as session:
        record_evaluation(session, plan)
        session.flush()  # the job's rows are written, not committed: the replacement cannot see them yet
        replacing.start()
        replacing.join(timeout=2)
        assert replacing.is_alive()  # it waits for the row the job's transaction holds
    replacing.join(timeout=60)
    assert not replacing.is_alive()
    [error] = refused
    assert error.status == 409 and "1 queued or running job(s) use digits-published@onnxruntime" in str(error)
    assert service_catalog(settings).model("digits-published").manifest.version == "1.0.0"


def test_a_folder_manifest_added_later_wins_and_the_published_one_is_reported(settings: Settings, tmp_path) -> None:
    publish_model(settings, ALICE, manifest_text("late"))
    folder = tmp_path / "more"
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "late.yaml").write_text(
        manifest_text("late", model_url="https://elsewhere.example.org/x.onnx")
    )
    both = replace(settings, manifest_dirs=(*settings.manifest_dirs, folder))
    catalog = service_catalog(both)
    loaded = catalog.model("late")
    assert catalog.publication(loaded) is None and loaded.manifest.artifacts[0].url.startswith("https://elsewhere")
    assert any("late@onnxruntime is also defined by" in str(p) for p in catalog.problems)


def test_the_catalog_parses_a_published_manifest_once_per_text(settings: Settings, monkeypatch) -> None:
    calls: list[str] = []
    parse = published_catalog.parse_yaml_text
    monkeypatch.setattr(
        published_catalog, "parse_yaml_text", lambda text, source: calls.append(source) or parse(text, source)
    )
    publish_model(settings, ALICE, manifest_text("one"))
    publish_model(settings, ALICE, manifest_text("two"))
    for _ in range(5):
        assert {"one", "two"} <= {m.manifest.name for m in service_catalog(settings).models}
    assert sorted(calls) == ["published model one@onnxruntime", "published model two@onnxruntime"]
    publish_model(settings, ALICE, manifest_text("two", version="2.0.0"))
    assert service_catalog(settings).model("two").manifest.version == "2.0.0"
    assert len(calls) == 3


def test_a_row_written_by_other_means_is_checked_again_when_served(settings: Settings) -> None:
    text = manifest_text("sneaky", model_url="file:///etc/passwd.onnx", model_sha256="0" * 64)
    with session_scope(settings.database) as session:
        session.add(
            PublishedModel(
                name="sneaky",
                framework="onnxruntime",
                version="1.0.0",
                owner="mallory",
                manifest_yaml=text,
                manifest_sha256=sha256_of(text.encode()),
            )
        )
    catalog = service_catalog(settings)
    assert "sneaky" not in {m.manifest.name for m in catalog.models}
    assert any(p.field == "artifacts[0].url" and "is a local file" in p.message for p in catalog.problems)
