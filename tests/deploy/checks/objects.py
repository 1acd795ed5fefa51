"""Rendered manifests as Python objects: strict YAML loading, names, the contract's constants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

NAMESPACE = "feast-inference"
ISVC_NAME = "click-model"
CONTRACT_OUTPUTS = {"score", "decision", "model_version", "prediction_source"}

Obj = dict[str, Any]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (kubectl does; PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"duplicate key {key!r}",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_docs(text: str) -> list[Obj]:
    """All non-empty documents of a multi-document YAML stream (duplicate keys fail)."""
    docs = [d for d in yaml.load_all(text, Loader=_UniqueKeyLoader) if d is not None]
    for d in docs:
        assert isinstance(d, dict), f"a YAML document is not a mapping: {d!r:.200}"
    return docs


def load_file(path: Path) -> list[Obj]:
    return load_docs(path.read_text())


def ident(obj: Obj) -> str:
    md = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{md.get('name')}"
