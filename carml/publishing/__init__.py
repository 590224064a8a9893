"""Models published through the service: checked like manifest files, kept in the database, and served beside the
manifest folders to every web process and worker (no shared disk needed).

No web framework here: the REST API, the web pages and the CLI all publish and remove through these functions.
"""

from carml.publishing.catalog import service_catalog
from carml.publishing.checks import MAX_PUBLISHED_BYTES, PUBLISHABLE_SCHEMES
from carml.publishing.errors import PublishError
from carml.publishing.files import job_manifest, published_path
from carml.publishing.service import (
    Outcome,
    PublishedModelInfo,
    PublishResult,
    list_published,
    publish_model,
    remove_model,
    still_published,
)

__all__ = [
    "MAX_PUBLISHED_BYTES",
    "PUBLISHABLE_SCHEMES",
    "Outcome",
    "PublishError",
    "PublishResult",
    "PublishedModelInfo",
    "job_manifest",
    "list_published",
    "publish_model",
    "published_path",
    "remove_model",
    "service_catalog",
    "still_published",
]
