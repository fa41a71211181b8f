"""The one helper that turns generated data into file text, header first."""

from __future__ import annotations

import json
from typing import Any

import yaml

from infra.generated import header

HEADER = header("monitoring/thresholds.yaml")


class _Dumper(yaml.SafeDumper):
    """Block style everywhere; multi-line strings as literal blocks so diffs stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _require(data: object, what: str) -> None:
    if not data:
        raise ValueError(f"refusing to write {what}: the generator produced nothing")


def yaml_file(data: Any, what: str) -> str:
    _require(data, what)
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096,
                     default_flow_style=False)
    return f"# {HEADER}\n{body}"


def json_file(data: Any, what: str) -> str:
    # JSON has no comments: the header lives in the document (dashboards: `description`).
    _require(data, what)
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def text_file(body: str, what: str, comment: str) -> str:
    _require(body.strip(), what)
    return comment.format(HEADER) + "\n" + body
