"""Where a prediction job keeps its inputs and its answers.

A prediction is usually one small file, and what a user waits for is the answer: an object-store round trip to
keep the input, one to read it back in the worker and one to keep the answers would be most of that wait. So:

- Inputs that are small together (at most `INLINE_INPUT_BYTES`) are kept in the job's row, base64 in its
  parameters (`{"name", "data"}`), written in the transaction that records the job. Larger ones go to the object
  store under `jobs/<id>/inputs/` (`{"name", "key"}`), as every input did before; `input_bytes` reads either.
- The answers are kept once, in the job's result row (`metrics.predictions`), written in the transaction that
  ends the job, so they are stored before anyone can see the job as succeeded. `answer_lines` gives them as the
  JSON Lines that GET /api/v1/results/ID/outputs serves. Jobs from before this kept a copy in the object store
  too (an `output_objects` row); those are served from there, as before.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from carml.db.models import Result
from carml.storage import ObjectStore

logger = logging.getLogger(__name__)

#: Inputs of one job up to this many bytes together stay in the job's row; past it, all go to the object store.
INLINE_INPUT_BYTES = 64 * 1024


def _safe_name(name: str) -> str:
    """The file name part of an upload, reduced to characters safe in an object key."""
    base = re.split(r"[\\/]", name)[-1]
    return re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[:100] or "input"


def keep_inputs(store: ObjectStore, job_id: str, inputs: Sequence[tuple[str, bytes]]) -> list[dict[str, str]]:
    """The job parameters' `inputs` entries for (name, content) pairs, putting them in the store if they are big."""
    if sum(len(data) for _, data in inputs) <= INLINE_INPUT_BYTES:
        return [{"name": name, "data": base64.b64encode(data).decode("ascii")} for name, data in inputs]
    entries = []
    try:
        for index, (name, data) in enumerate(inputs):
            key = f"jobs/{job_id}/inputs/{index:03d}-{_safe_name(name)}"
            store.put_bytes(key, data)
            entries.append({"key": key, "name": name})
    except BaseException:
        discard_inputs(store, job_id)  # the ones already put: the job will not be recorded
        raise
    return entries


def discard_inputs(store: ObjectStore, job_id: str) -> None:
    """Remove what `keep_inputs` put in the store for a job that was not recorded after all; never raises (the
    error that stopped the job is the one to report)."""
    try:
        store.delete_prefix(f"jobs/{job_id}/inputs/")
    except Exception:  # the store may be what failed
        logger.warning("could not remove the inputs of refused job %s", job_id, exc_info=True)


def input_bytes(store: ObjectStore, entry: dict[str, str]) -> bytes:
    """The content of one `inputs` entry: from the job's row, or from the object store (raises ObjectNotFound)."""
    if "data" in entry:
        return base64.b64decode(entry["data"])
    return store.get_bytes(entry["key"])


def prediction_answers(result: Result | None) -> list[dict[str, Any]]:
    """A prediction job's answers, one per input in input order (none before it has a result)."""
    return list(((result.metrics or {}).get("predictions") or []) if result is not None else [])


def answer_lines(answers: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """Answers as JSON Lines, one line each, as a job's outputs object holds them."""
    for answer in answers:
        yield (json.dumps(answer) + "\n").encode()
