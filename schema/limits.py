"""Query depth, alias and cost limits, measured in one walk of the operation.

Cost: every field selected costs 1, multiplied by the page sizes of the lists it sits under:
a field under `first: 50` costs 50, under two nested `first: 50` lists 2,500. A list field
without `first` counts as the default page size. Introspection (`__schema`, `__type`) is free,
so GraphiQL works under any limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)

from core.keyset import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE


@dataclass(frozen=True)
class Measure:
    depth: int
    aliases: int
    cost: int


def _page_size(field: FieldNode, variables: dict[str, Any]) -> int | None:
    for argument in field.arguments or ():
        if argument.name.value != "first":
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            size = int(value.value)
        elif isinstance(value, VariableNode):
            size = variables.get(value.name.value)
        else:
            size = None
        if not isinstance(size, int) or size < 1:
            return DEFAULT_PAGE_SIZE
        return min(size, MAX_PAGE_SIZE)
    return None


def measure(
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any] | None = None,
) -> Measure:
    variables = variables or {}
    aliases = 0
    max_depth = 0

    def walk(selection_set: SelectionSetNode | None, depth: int, multiplier: int, seen: frozenset[str]) -> int:
        nonlocal aliases, max_depth
        if selection_set is None:
            return 0
        cost = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name.startswith("__"):
                    continue
                if selection.alias is not None:
                    aliases += 1
                max_depth = max(max_depth, depth)
                size = _page_size(selection, variables)
                cost += multiplier
                inner = multiplier * size if size is not None else multiplier
                cost += walk(selection.selection_set, depth + 1, inner, seen)
            elif isinstance(selection, InlineFragmentNode):
                cost += walk(selection.selection_set, depth, multiplier, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in seen:  # cycles are a validation error
                    cost += walk(fragment.selection_set, depth, multiplier, seen | {name})
        return cost

    cost = walk(operation.selection_set, 1, 1, frozenset())
    return Measure(depth=max_depth, aliases=aliases, cost=cost)
