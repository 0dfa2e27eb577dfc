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


# Counts above this are reported as this (the largest integer JSON clients read exactly).
MEASURE_CEILING = 2**53 - 1


@dataclass(frozen=True)
class Measure:
    depth: int
    aliases: int
    cost: int
    named: int = 0  # root fields bearing one of the names asked for


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
    root_names: frozenset[str] = frozenset(),
) -> Measure:
    """One pass over the operation. Each fragment is measured once and reused wherever it is
    spread: its cost scales linearly with the list multiplier above it, so a document that
    spreads fragments exponentially many times (a "fragment bomb") is measured in linear time.
    `root_names`: the root fields to count (aliases counted, fragments followed) into `named`."""
    variables = variables or {}
    # per fragment: (cost at multiplier 1, depth of its deepest field below the spread, aliases,
    # fields at its own level bearing one of root_names)
    summaries: dict[str, tuple[int, int, int, int]] = {}
    in_progress: set[str] = set()

    def summarize(selection_set: SelectionSetNode | None) -> tuple[int, int, int, int]:
        cost = depth = aliases = named = 0
        if selection_set is None:
            return 0, 0, 0, 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__"):
                    continue
                if selection.alias is not None:
                    aliases += 1
                named += selection.name.value in root_names
                size = _page_size(selection, variables)
                inner_cost, inner_depth, inner_aliases, _ = summarize(selection.selection_set)
                cost += 1 + inner_cost * (size if size is not None else 1)
                depth = max(depth, 1 + inner_depth)
                aliases += inner_aliases
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = summarize(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or name in in_progress:  # unknown or cyclic: validation errors
                    continue
                if name not in summaries:
                    in_progress.add(name)
                    summaries[name] = summarize(fragment.selection_set)
                    in_progress.discard(name)
                inner = summaries[name]
            else:
                continue
            cost += inner[0]
            depth = max(depth, inner[1])
            aliases += inner[2]
            named += inner[3]
        return cost, depth, aliases, named

    cost, depth, aliases, named = summarize(operation.selection_set)
    return Measure(depth=depth, aliases=min(aliases, MEASURE_CEILING), cost=min(cost, MEASURE_CEILING),
                   named=min(named, MEASURE_CEILING))
