"""The load test runs on the service area's real PostgreSQL + Redis + S3 + worker fixtures."""

from service.conftest import service_env, start_worker  # noqa: F401
