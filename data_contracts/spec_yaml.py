"""Reading a spec's YAML as data that cannot take the reader down or say two things at once.

A spec comes from a user (a lender's reviewer, a file dropped beside the data), and anything that
loads it (the CLI, the Dagster UI, scoring) must survive a hostile one. On top of PyYAML's safe
loader (no tags that build objects):

- **no aliases**: `&a` / `*a` can expand a sub-kilobyte file into gigabytes (the "billion laughs"
  bomb); a spec never needs them, so any alias is refused at the line where it appears;
- **no duplicate keys**: YAML keeps the last of two equal keys silently, which once dropped a
  column's range check; both lines are named;
- **a size cap** on the text (`MAX_SPEC_BYTES`), checked before parsing.

    from data_contracts.spec_yaml import load_spec_yaml
    raw = load_spec_yaml(text)   # dict, or SpecYamlError with one sentence
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode

# A spec of a few hundred columns with their category texts is tens of kilobytes; a megabyte is
# far above any honest one and still cheap to refuse.
MAX_SPEC_BYTES = 1_000_000


class SpecYamlError(ValueError):
    """A spec text that is refused before its fields are read (one sentence, with a line)."""


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases and without duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401 - PyYAML's own signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise SpecYamlError(
                f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not allowed "
                "in a spec; write the values out"
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: let PyYAML give its own message
                continue
            if first is not None:
                raise SpecYamlError(f"line {line}: key {key!r} is given twice (first on line {first})")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_spec_yaml(text: str) -> Any:  # noqa: ANN401 - whatever the YAML holds; the caller checks it
    """The YAML `text` as plain data; SpecYamlError for a bomb, a duplicate key or an oversized text."""
    size = len(text.encode("utf-8"))
    if size > MAX_SPEC_BYTES:
        raise SpecYamlError(f"the spec is {size:,} bytes; a spec may hold at most {MAX_SPEC_BYTES:,}")
    return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass


__all__ = ["MAX_SPEC_BYTES", "SpecYamlError", "load_spec_yaml"]
