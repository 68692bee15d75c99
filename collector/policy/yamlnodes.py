"""Policy files as YAML nodes that know where they are: file, line and field path.

The parser reads documents through `Value`, whose accessors check types and known fields and
raise `PolicyError` naming the file, the line and the path of the offending field, so that
every message points at the exact spot the user has to fix.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from flowscope.common.errors import InputError

POLICY_FILE_SUFFIXES: Final = (".yaml", ".yml", ".json")

_STR_TAG: Final = "tag:yaml.org,2002:str"
_INT_TAG: Final = "tag:yaml.org,2002:int"
_BOOL_TAG: Final = "tag:yaml.org,2002:bool"
_NULL_TAG: Final = "tag:yaml.org,2002:null"


class PolicyError(InputError):
    """An invalid policy: where it is (file, line, field path) and what is wrong."""

    def __init__(self, file: str, line: int, path: str, problem: str) -> None:
        self.file = file
        self.line = line
        self.path = path
        self.problem = problem
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {path}: {problem}" if path else f"{where}: {problem}")


@dataclass(frozen=True)
class Value:
    """One YAML node of a policy document, with its file and field path."""

    node: yaml.Node
    file: str
    path: str
    # A mapping's field is located at its key: a block value starts on the next line.
    key_node: yaml.Node | None = None

    @property
    def line(self) -> int:
        return (self.key_node or self.node).start_mark.line + 1

    def error(self, problem: str) -> PolicyError:
        return PolicyError(self.file, self.line, self.path, problem)

    def _child(self, node: yaml.Node, suffix: str) -> Value:
        return Value(node, self.file, self.path + suffix)

    @property
    def is_null(self) -> bool:
        return isinstance(self.node, yaml.ScalarNode) and self.node.tag == _NULL_TAG

    def entries(self) -> dict[str, Value]:
        """The mapping's fields by name; repeated or non-string keys are errors."""
        if not isinstance(self.node, yaml.MappingNode):
            raise self.error(f"expected a mapping, found {self._kind()}")
        found: dict[str, Value] = {}
        prefix = self.path + "." if self.path else ""
        for key_node, value_node in self.node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG:
                raise Value(key_node, self.file, self.path).error("field names must be strings")
            key = str(key_node.value)
            if key in found:
                raise Value(key_node, self.file, prefix + key).error("field given twice")
            found[key] = Value(value_node, self.file, prefix + key, key_node)
        return found

    def fields(self, known: Collection[str]) -> dict[str, Value]:
        """The mapping's fields, all of which must be in known."""
        found = self.entries()
        for key, value in found.items():
            if key not in known:
                raise value.error(f"unknown field (expected one of: {', '.join(sorted(known))})")
        return found

    def items(self) -> Iterator[Value]:
        """The elements of a sequence; null reads as an empty sequence."""
        if self.is_null:
            return
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.error(f"expected a list, found {self._kind()}")
        for index, node in enumerate(self.node.value):
            yield self._child(node, f"[{index}]")

    @property
    def is_string(self) -> bool:
        return isinstance(self.node, yaml.ScalarNode) and self.node.tag == _STR_TAG

    def string(self) -> str:
        if not self.is_string:
            raise self.error(f"expected a string, found {self._kind()}")
        return str(self.node.value)

    def integer(self) -> int:
        if not isinstance(self.node, yaml.ScalarNode) or self.node.tag != _INT_TAG:
            raise self.error(f"expected an integer, found {self._kind()}")
        try:
            return int(self.node.value, 0)
        except ValueError as exc:
            raise self.error(f"expected a decimal integer, found {self.node.value!r}") from exc

    def string_map(self) -> dict[str, str]:
        """A mapping of strings to strings (labels, annotations); null reads as empty."""
        return {} if self.is_null else {k: v.string() for k, v in self.entries().items()}

    def _kind(self) -> str:
        if isinstance(self.node, yaml.MappingNode):
            return "a mapping"
        if isinstance(self.node, yaml.SequenceNode):
            return "a list"
        if self.is_null:
            return "nothing (null)"
        kinds = {_STR_TAG: "a string", _INT_TAG: "an integer", _BOOL_TAG: "a boolean",
                 "tag:yaml.org,2002:float": "a number"}
        return f"{kinds.get(self.node.tag, 'a value')} {self.node.value!r}"


def read_documents(path: Path) -> list[Value]:
    """The non-empty documents of a policy file, or of every policy file in a directory."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.suffix in POLICY_FILE_SUFFIXES and p.is_file())
        if not files:
            raise InputError(f"{path}: no policy files (*.yaml, *.yml, *.json) in this directory")
        return [document for file in files for document in _file_documents(file)]
    return _file_documents(path)


def _file_documents(path: Path) -> list[Value]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"cannot read policy file {path}: {exc.strerror}") from exc
    return parse_documents(text, str(path))


def _compose(text: str) -> list[yaml.Node]:
    """The YAML nodes of every document: by libyaml when it is there (ten times faster on
    large policy sets); a text it refuses is composed again in Python, whose messages the
    errors quote."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return list(yaml.compose_all(text, Loader=fast))
        except yaml.YAMLError:
            pass
    return list(yaml.compose_all(text, Loader=yaml.SafeLoader))


def parse_documents(text: str, file: str) -> list[Value]:
    """The non-empty documents of YAML text; file names it in errors."""
    try:
        nodes = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise PolicyError(file, line, "", f"YAML syntax error: {exc.problem or exc.context}") \
            from exc
    except yaml.YAMLError as exc:
        raise PolicyError(file, 0, "", f"YAML error: {exc}") from exc
    return [Value(node, file, "") for node in nodes
            if node is not None and not Value(node, file, "").is_null]
