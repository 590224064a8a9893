"""A bounded prefetch pipeline: threads read and preprocess upcoming batches while the model runs.

This is the overlap MLModelScope's streaming steps gave: input work hides behind inference, and the
bound keeps memory flat however large the dataset.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from carml.datasets import DatasetItem
from predictors.base import CollatedItems, Predictor, PreparedItem
from predictors.preprocessing import ItemError

# Reading an item may fail in many ways (missing file, permissions, a truncated archive member ...).
READ_ERRORS = (ItemError, OSError, ValueError)


@dataclass
class PreparedBatch:
    """A batch ready for the model, plus what went wrong and how long the input stages took."""

    items: list[PreparedItem] = field(default_factory=list)
    true_classes: list[int | None] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    load_ms: float = 0.0
    preprocess_ms: float = 0.0
    decode_ms: float = 0.0  # the part of preprocess_ms spent in decode steps
    started_at: float = 0.0  # epoch seconds when reading began (traces place the input stages from it)


def prepare_batch(predictor: Predictor, items: Sequence[DatasetItem], *, collate: bool = False) -> PreparedBatch:
    """Read and preprocess items; a bad item is recorded with its reason and skipped.

    With `collate`, the batch is also made ready for one model call: image inputs' elementwise steps are left for
    the model call to apply to the whole batch (on the model's device when the framework can), and the items'
    arrays are stacked here, so that neither is done item by item, nor on the model's critical path.
    """
    batch = PreparedBatch(started_at=time.time())
    for item in items:
        started = time.perf_counter()
        try:
            data = item.read()
        except READ_ERRORS as exc:
            batch.errors.append((item.item_id, f"cannot read item: {exc}"))
            continue
        finally:
            batch.load_ms += (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        try:
            prepared = predictor.preprocess(item.item_id, data, batch_steps=collate)
            batch.items.append(prepared)
            batch.true_classes.append(item.label)
            batch.decode_ms += prepared.context.decode_ms
        except READ_ERRORS as exc:
            batch.errors.append((item.item_id, str(exc)))
        finally:
            batch.preprocess_ms += (time.perf_counter() - started) * 1000
    if collate and batch.items:
        started = time.perf_counter()
        try:
            feeds = predictor.collate(batch.items)
        except Exception:  # e.g. out of memory: the model call stacks them again and reports what went wrong
            feeds = None
        batch.items = CollatedItems(batch.items, feeds)
        batch.preprocess_ms += (time.perf_counter() - started) * 1000
    return batch


def prefetched_batches(
    predictor: Predictor,
    items: Sequence[DatasetItem],
    batch_size: int,
    workers: int,
    depth: int,
    inline_while: Callable[[], bool] | None = None,
) -> Iterator[PreparedBatch]:
    """Yield prepared batches in dataset order, keeping at most `depth` batches in flight in `workers` threads.

    With no `workers`, each batch is prepared when it is asked for, in the caller's thread; with `inline_while`, so
    are the batches asked for while it returns True (asked before each one), and the rest by the threads."""
    chunks = (items[i : i + batch_size] for i in range(0, len(items), batch_size))
    while workers == 0 or (inline_while is not None and inline_while()):
        chunk = next(chunks, None)
        if chunk is None:
            return
        yield prepare_batch(predictor, chunk, collate=True)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="carml-prefetch") as pool:
        pending: deque[Future[PreparedBatch]] = deque()

        def top_up() -> None:
            while len(pending) < depth:
                chunk = next(chunks, None)
                if chunk is None:
                    return
                pending.append(pool.submit(prepare_batch, predictor, chunk, collate=True))

        top_up()
        try:
            while pending:
                batch = pending.popleft().result()
                top_up()
                yield batch
        finally:
            for future in pending:  # the consumer stopped early (cancelled): drop queued work
                future.cancel()
