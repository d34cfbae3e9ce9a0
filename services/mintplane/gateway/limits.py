"""Limits on what one GraphQL document may ask for, checked before anything is resolved.

Depth and aliases use Strawberry's own validators; the cost estimate is ours: every field costs 1, and the
selections under a list field are counted once per item it may return (`first`, else its default, else
LIST_ESTIMATE for plain lists). A follower page of 100 users with their followers' pages of 100 is then
10,000+ and refused, however shallow it is.

The rule classes are built once per process, not per request: Strawberry's ValidationCache keys its
entries by the tuple of rule classes, so fresh classes per request would never hit the cache.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
)
from graphql.language import Node as ASTNode
from strawberry.extensions import query_depth_limiter
from strawberry.extensions.max_aliases import create_validator as create_alias_validator

from mintplane.gateway.pagination import MAX_PAGE_SIZE

LIST_ESTIMATE = 10


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def _first_value(node: FieldNode, field_def: Any) -> int | None:
    """How many items a paginated field may return; None when it takes no `first`."""
    first_arg = field_def.args.get("first")
    if first_arg is None:
        return None
    for argument in node.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode):
                return max(int(argument.value.value), 0)
            if isinstance(argument.value, VariableNode):
                return MAX_PAGE_SIZE  # not known before execution: assume the worst the API allows
    default = first_arg.default_value
    return default if isinstance(default, int) else MAX_PAGE_SIZE


class _CostCounter:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode], cap: int) -> None:
        self.schema = schema
        self.fragments = fragments
        self.cap = cap

    def selection_cost(
        self, selection_set: SelectionSetNode | None, parent: Any, seen: frozenset[str], in_page: bool = False
    ) -> int:
        """Cost of a selection set. `in_page`: directly under a paginated field, whose `edges` list is the
        page itself and must not be multiplied a second time."""
        if selection_set is None or parent is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            total += self._node_cost(selection, parent, seen, in_page)
            if total > self.cap:  # already refused: stop walking huge documents early
                return total
        return total

    def _node_cost(self, node: ASTNode, parent: Any, seen: frozenset[str], in_page: bool) -> int:
        if isinstance(node, FieldNode):
            fields = getattr(parent, "fields", {})
            field_def = fields.get(node.name.value)
            if field_def is None:  # __typename, or an unknown field another rule reports
                return 1
            child = get_named_type(field_def.type)
            first = _first_value(node, field_def)
            if first is not None:
                return 1 + first * self.selection_cost(node.selection_set, child, seen, in_page=True)
            multiplier = (1 if in_page else LIST_ESTIMATE) if _is_list(field_def.type) else 1
            return 1 + multiplier * self.selection_cost(node.selection_set, child, seen)
        if isinstance(node, InlineFragmentNode):
            target = self.schema.get_type(node.type_condition.name.value) if node.type_condition else parent
            return self.selection_cost(node.selection_set, target, seen, in_page)
        if isinstance(node, FragmentSpreadNode):
            name = node.name.value
            fragment = self.fragments.get(name)
            if fragment is None or name in seen:  # unknown or cyclic: reported by graphql-core's own rules
                return 0
            target = self.schema.get_type(fragment.type_condition.name.value)
            return self.selection_cost(fragment.selection_set, target, seen | {name}, in_page)
        return 0


def create_cost_validator(max_cost: int) -> type[ValidationRule]:
    class MaxComplexityValidator(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = {
                definition.name.value: definition
                for definition in document.definitions
                if isinstance(definition, FragmentDefinitionNode)
            }
            counter = _CostCounter(context.schema, fragments, max_cost)
            for definition in document.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                root = context.schema.get_root_type(definition.operation)
                cost = counter.selection_cost(definition.selection_set, root, frozenset())
                if cost > max_cost:
                    name = definition.name.value if definition.name else "anonymous"
                    context.report_error(GraphQLError(
                        f"Operation '{name}' is too complex: estimated cost exceeds {max_cost}. "
                        "Ask for fewer items (`first`) or fewer nested lists.",
                        definition,
                    ))

    return MaxComplexityValidator


def validation_rules(*, max_depth: int, max_aliases: int, max_cost: int) -> list[type[ASTValidationRule]]:
    """The process-wide rule classes for depth, aliases and cost (see the module docstring)."""
    return [
        query_depth_limiter.create_validator(max_depth, None, None),
        create_alias_validator(max_aliases),
        create_cost_validator(max_cost),
    ]
