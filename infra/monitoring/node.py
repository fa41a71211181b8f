"""A YAML node cursor that reads typed values and names the file position on every error."""

from __future__ import annotations

import io
import re
from decimal import Decimal, InvalidOperation
from typing import NoReturn

import yaml

from infra.monitoring.duration import Duration


class SpecError(ValueError):
    """The spec is invalid; the message names the file position and the field."""


def compose(text: str, source: str) -> yaml.Node:
    """The YAML node tree of `text`, its marks naming `source`."""
    stream = io.StringIO(text)
    stream.name = source
    try:
        node = yaml.compose(stream, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from exc
    if node is None:
        raise SpecError(f"{source}: the document is empty")
    return node


class Cursor:
    """One node of the spec, with the dotted path that reached it."""

    def __init__(self, node: yaml.Node, path: str, source: str) -> None:
        self.node = node
        self.path = path
        self.source = source

    @classmethod
    def parse(cls, text: str, source: str) -> Cursor:
        return cls(compose(text, source), "", source)

    def fail(self, message: str) -> NoReturn:
        mark = self.node.start_mark
        where = self.path or "(top level)"
        # The node's own file: an overlay's nodes name the overlay.
        raise SpecError(f"{mark.name}:{mark.line + 1}:{mark.column + 1}: {where}: {message}")

    def _entries(self) -> list[tuple[yaml.Node, yaml.Node]]:
        if not isinstance(self.node, yaml.MappingNode):
            self.fail("expected a mapping")
        return list(self.node.value)

    def keys(self) -> list[str]:
        return [str(k.value) for k, _ in self._entries()]

    def has(self, key: str) -> bool:
        return key in self.keys()

    def get(self, key: str) -> Cursor:
        for k, v in self._entries():
            if k.value == key:
                return Cursor(v, f"{self.path}.{key}" if self.path else key, self.source)
        self.fail(f"missing required field '{key}'")

    def only(self, *allowed: str) -> None:
        """Reject unknown keys so a typo ('threshhold') is an error, not a silent default."""
        for k, _ in self._entries():
            if k.value not in allowed:
                path = f"{self.path}.{k.value}" if self.path else str(k.value)
                child = Cursor(k, path, self.source)
                child.fail(f"unknown field (allowed: {', '.join(allowed)})")

    def items(self) -> list[Cursor]:
        if not isinstance(self.node, yaml.SequenceNode):
            self.fail("expected a list")
        return [Cursor(v, f"{self.path}[{i}]", self.source) for i, v in enumerate(self.node.value)]

    def mapping(self) -> list[tuple[str, Cursor]]:
        return [(str(k.value), Cursor(v, f"{self.path}.{k.value}", self.source))
                for k, v in self._entries()]

    def scalar(self) -> str:
        if not isinstance(self.node, yaml.ScalarNode):
            self.fail("expected a single value")
        return str(self.node.value)

    def text(self) -> str:
        value = self.scalar()
        if not value.strip():
            self.fail("must not be empty")
        return value

    def choice(self, *allowed: str) -> str:
        value = self.scalar()
        if value not in allowed:
            self.fail(f"'{value}' is not one of {', '.join(allowed)}")
        return value

    def boolean(self) -> bool:
        return self.choice("true", "false") == "true"

    def name(self) -> str:
        value = self.scalar()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", value):
            self.fail(f"'{value}' is not a valid name (letters, digits, _ and -)")
        return value

    def decimal(self) -> Decimal:
        # Read the literal the operator wrote, never a float, so 0.1 stays 0.1 in the output.
        try:
            value = Decimal(self.scalar())
        except InvalidOperation:
            self.fail(f"'{self.scalar()}' is not a number")
        if not value.is_finite():
            self.fail(f"'{self.scalar()}' is not a finite number")
        return value

    def integer(self) -> int:
        value = self.decimal()
        if value != value.to_integral_value() or value < 0:
            self.fail(f"'{self.scalar()}' is not a whole number >= 0")
        return int(value)

    def duration(self) -> Duration:
        try:
            return Duration.parse(self.scalar())
        except ValueError as exc:
            self.fail(str(exc))

    def strings(self) -> tuple[str, ...]:
        return tuple(item.text() for item in self.items())
