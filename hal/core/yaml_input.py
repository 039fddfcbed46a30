"""Reading a YAML file a user wrote (run and sweep configs): a missing, unreadable, malformed or
hostile file is one line saying what is wrong, within a second.

Beyond plain YAML syntax the loader refuses, naming the line: aliases that together stand for
more than ``MAX_ALIAS_NODES`` values (a "billion laughs" bomb is a few hundred bytes that expand
to billions), an alias inside the value it refers to, nesting deeper than ``MAX_DEPTH``, a key
written twice in one mapping (YAML would keep the last silently), keys that are not names, and
files over ``MAX_BYTES``. Anchors, aliases and merge keys (``<<: *base``) used a few times are fine.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from hal.core.errors import HalError, shown
from hal.core.paths import path_error, readable_file

MAX_BYTES = 1 << 20  # a run or sweep config is a few hundred bytes
MAX_ALIAS_NODES = 10_000  # values that all alias uses of one file stand for, together
MAX_DEPTH = 50  # nesting levels (PyYAML recurses per level; ~1000 would overflow the stack)
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(yaml.YAMLError):
    """A file PyYAML would read but HAL does not: ``problem`` completes "config file X ..."."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that sizes every node while composing it (``_hal_size``: how many
    values it stands for once its aliases are expanded) and refuses the hostile cases above."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._alias_nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            line = self.peek_event().start_mark.line + 1
            node = super().compose_node(parent, index)
            size = getattr(node, "_hal_size", None)
            if size is None:  # still being composed: the alias is inside its own anchor
                raise _Refused(f"has an alias at line {line} inside the value it refers to: "
                               "write the value out instead")
            self._alias_nodes += size
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise _Refused(f"has aliases that expand to more than {MAX_ALIAS_NODES:,} values "
                               f"(at line {line}; an alias bomb?): write the values out or use "
                               "fewer aliases")
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            line = self.peek_event().start_mark.line + 1
            raise _Refused(f"nests values deeper than {MAX_DEPTH} levels (at line {line}): "
                           "a config is a few levels of keys and lists")
        node = super().compose_node(parent, index)
        self._depth -= 1
        if isinstance(node, yaml.SequenceNode):
            node._hal_size = 1 + sum(child._hal_size for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            node._hal_size = 1 + sum(k._hal_size + v._hal_size for k, v in node.value)
        else:
            node._hal_size = 1
        return node

    def compose_mapping_node(self, anchor: Any) -> Any:
        node = super().compose_mapping_node(anchor)
        first_line: dict[str, int] = {}
        for key, _ in node.value:
            line = key.start_mark.line + 1
            if key.tag == _MERGE_TAG:  # ``<<: *base``: its keys may be overridden on purpose
                continue
            if not isinstance(key, yaml.ScalarNode) or key.tag != _STR_TAG:
                raise _Refused(f"has a key at line {line} that YAML does not read as a name "
                               f"({shown(key.value if isinstance(key, yaml.ScalarNode) else '...')}): "
                               "keys are names such as epsilon; quote a key meant as text")
            if key.value in first_line:
                raise _Refused(f"repeats the key {shown(key.value)} at line {line} (first at line "
                               f"{first_line[key.value]}): keep one of them")
            first_line[key.value] = line
        return node

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # e.g. date 2024-13-45, a 5000-digit integer
            raise yaml.constructor.ConstructorError(None, None, str(exc).split(";")[0],
                                                    node.start_mark) from None


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping; a missing, malformed or hostile file is a ``HalError``."""
    fix = "pass --config with the path of a readable YAML file"
    p = readable_file(path, "config file", fix)
    where = f"config file {shown(str(p), 200)}"
    try:
        if p.stat().st_size > MAX_BYTES:
            raise HalError(f"{where} is {p.stat().st_size:,} bytes, more than a config can need "
                           f"({MAX_BYTES:,}): pass the right file")
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise path_error("config file", p, exc, fix) from None
    except UnicodeDecodeError as exc:
        raise HalError(f"{where} is not UTF-8 text (byte {exc.start}): save it as UTF-8 YAML") from None
    loader = _BoundedLoader(text)
    try:
        data = loader.get_single_data()
    except _Refused as exc:
        raise HalError(f"{where} {exc.problem}") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f" at line {line + 1}" if line is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or "").split())[:100]
        why = f" ({problem})" if problem else ""
        advice = "fix that value" if isinstance(exc, yaml.constructor.ConstructorError) else "fix its syntax"
        raise HalError(f"{where} is not valid YAML{at}{why}: {advice}") from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HalError(f"{where} must hold a mapping of keys to values")
    return data
