"""Read manifest files safely and turn every problem into a located, human-readable `Problem`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from carml.errors import ManifestError, Problem
from carml.manifest.dataset import DatasetManifest
from carml.manifest.model import ModelManifest

M = TypeVar("M", bound=BaseModel)

MAX_MANIFEST_BYTES = 1024 * 1024
# Nodes a manifest may hold once its aliases are expanded: real manifests have hundreds; a "billion laughs"
# document of a few lines (aliases of aliases, nine deep) expands to 10**9 and would exhaust memory downstream.
MAX_EXPANDED_NODES = 100_000
# Manifests nest a handful of levels; stopping at this depth costs microseconds, where running into Python's
# recursion limit costs seconds of CPU per file.
MAX_DEPTH = 100


@dataclass(frozen=True)
class LoadedManifest(Generic[M]):
    """A validated manifest together with where it came from and a digest of its exact bytes."""

    manifest: M
    source: Path
    digest: str

    @property
    def folder(self) -> Path:
        """Relative artifact URLs are resolved against this folder."""
        return self.source.parent


def format_field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest YAML node a location reaches (a missing field gives its parent's)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            child = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _strip_union_tags(loc: tuple[int | str, ...], errors_input: Any) -> tuple[int | str, ...]:
    """Drop the discriminator values pydantic inserts into locations (e.g. `...[1].resize.size`)."""
    cleaned: list[int | str] = []
    data = errors_input
    for part in loc:
        if isinstance(data, dict) and isinstance(part, str) and part not in data and data.get("op") == part:
            continue  # the union tag: the step's op value, not a key the user wrote
        cleaned.append(part)
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            data = None
    return tuple(cleaned)


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling against docs/manifests.md)"
    message = str(error["msg"])
    # pydantic prefixes messages raised in validators with "Value error, "; the prefix helps nobody.
    return message.removeprefix("Value error, ")


class _ManifestLoader(yaml.SafeLoader):
    """The safe loader (no object construction), refusing duplicate keys (with them the last silently wins) and
    documents nested deeper than MAX_DEPTH."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise RecursionError(f"more than {MAX_DEPTH} levels")  # reported as "nested too deeply"
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # unhashable keys are refused by the base class with its own message
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def expanded_node_count(root: yaml.Node, stop_after: int) -> int:
    """How many nodes `root` amounts to with every alias expanded, counting no further than past `stop_after`."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]  # an alias of a node already counted: its whole size again, without walking it
        sizes[key] = 1  # a recursive alias (`&a [*a]`) counts once instead of looping
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        total = 1
        for child in children:
            total += size(child)
            if total > stop_after:
                break
        sizes[key] = total
        return total

    return size(root)


@dataclass(frozen=True)
class ParsedYaml:
    """A YAML document as data, its node tree (for line numbers) and the SHA-256 of the exact bytes read."""

    data: Any
    node: yaml.Node | None
    digest: str


def read_yaml(path: Path) -> ParsedYaml:
    """Read a manifest file once: parse it safely, keep its node tree for lines, hash its bytes."""
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError([Problem(str(path), "", f"file is {size} bytes; manifests are at most 1 MiB")])
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ManifestError([Problem(str(path), "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([Problem(str(path), "", f"cannot read file: {exc}")]) from None
    return _parse(text, str(path), hashlib.sha256(raw).hexdigest())


def parse_yaml_text(text: str, source: str) -> ParsedYaml:
    """Parse a manifest given as text (published through the service) exactly as a file is parsed; the digest is
    that of its UTF-8 bytes, the bytes a file holding it would have. `source` names it in problems."""
    return _parse(text, source, hashlib.sha256(text.encode("utf-8")).hexdigest())


def _parse(text: str, source: str, digest: str) -> ParsedYaml:
    try:
        loader = _ManifestLoader(text)
    except yaml.YAMLError as exc:  # the reader refuses non-printable characters (NUL ...) before any parsing
        reason = str(exc).splitlines()[0]
        raise ManifestError([Problem(source, "", f"not valid YAML: {reason}")]) from None
    try:
        node = loader.get_single_node()
        if node is not None and expanded_node_count(node, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
            message = f"not valid YAML: its aliases expand it past {MAX_EXPANDED_NODES} nodes (billion laughs)"
            raise ManifestError([Problem(source, "", message)])
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise ManifestError([Problem(source, "", f"not valid YAML: {reason}", line)]) from None
    except RecursionError:
        raise ManifestError([Problem(source, "", "not valid YAML: nested too deeply")]) from None
    finally:
        loader.dispose()
    return ParsedYaml(data, node, digest)


def validate_document(data: Any, node: yaml.Node | None, schema: type[M], source: str) -> M:
    """Validate parsed YAML against a schema; raise `ManifestError` listing every problem with its line."""
    if not isinstance(data, dict):
        raise ManifestError([Problem(source, "", "expected a mapping of fields at the top level")])
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = _strip_union_tags(tuple(error["loc"]), data)
            problems.append(Problem(source, format_field_path(loc), _message(error), line_of(node, loc)))
        raise ManifestError(problems) from None


def _load(path: Path, schema: type[M]) -> LoadedManifest[M]:
    path = Path(path)
    parsed = read_yaml(path)
    manifest = validate_document(parsed.data, parsed.node, schema, str(path))
    return LoadedManifest(manifest=manifest, source=path.resolve(), digest=parsed.digest)


def load_model_manifest(path: Path) -> LoadedManifest[ModelManifest]:
    """Load and validate a model manifest file."""
    return _load(path, ModelManifest)


def load_dataset_manifest(path: Path) -> LoadedManifest[DatasetManifest]:
    """Load and validate a dataset manifest file."""
    return _load(path, DatasetManifest)


def load_any_manifest(path: Path) -> LoadedManifest[ModelManifest] | LoadedManifest[DatasetManifest]:
    """Load a manifest whose kind is given by its `kind` field (default: model)."""
    data = read_yaml(Path(path)).data
    if isinstance(data, dict) and data.get("kind") == "dataset":
        return load_dataset_manifest(path)
    return load_model_manifest(path)
