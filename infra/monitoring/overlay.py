"""Environment overlays: a YAML mapping merged over the spec before it is read."""

from __future__ import annotations

import yaml


def merge(base: yaml.Node, over: yaml.Node) -> yaml.Node:
    """`over` on top of `base`: mappings merge key by key, anything else is replaced. Nodes
    keep their file positions, so an error in an overlay names the overlay's line."""
    if not (isinstance(base, yaml.MappingNode) and isinstance(over, yaml.MappingNode)):
        return over
    values = list(base.value)
    index = {str(key.value): i for i, (key, _) in enumerate(values)}
    for key, value in over.value:
        found = index.get(str(key.value))
        if found is None:
            values.append((key, value))
        else:
            values[found] = (values[found][0], merge(values[found][1], value))
    return yaml.MappingNode(base.tag, values, base.start_mark, base.end_mark,
                            flow_style=base.flow_style)


def without(node: yaml.Node, key: str) -> yaml.Node:
    """`node` (a mapping) without `key`."""
    if not isinstance(node, yaml.MappingNode):
        return node
    kept = [(k, v) for k, v in node.value if k.value != key]
    return yaml.MappingNode(node.tag, kept, node.start_mark, node.end_mark,
                            flow_style=node.flow_style)
