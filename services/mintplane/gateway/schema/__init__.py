"""The gateway's GraphQL schema: one module per domain (auth, users, wallets, chains, catalog with
activity), merged here, plus the extensions that guard and speed up every operation."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from mintplane.gateway.errors import CodedParserCache, ErrorCodes, GatewayMaskErrors, log_unexpected
from mintplane.gateway.limits import validation_rules
from mintplane.gateway.metrics import OperationMetrics
from mintplane.gateway.schema.auth import AuthMutation, AuthQuery
from mintplane.gateway.schema.catalog import CatalogMutation, CatalogQuery
from mintplane.gateway.schema.chains import ChainQuery
from mintplane.gateway.schema.users import UserMutation, UserQuery
from mintplane.gateway.schema.wallets import WalletMutation, WalletQuery
from mintplane.gateway.settings import GatewaySettings

Query = merge_types("Query", (AuthQuery, UserQuery, WalletQuery, ChainQuery, CatalogQuery))
Mutation = merge_types("Mutation", (AuthMutation, UserMutation, WalletMutation, CatalogMutation))

# Distinct query texts kept parsed and validated; hot front-end queries are a few dozen.
CACHE_SIZE = 512


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Expected errors (bad input, no session...) are normal traffic: only log what gets masked."""
        log_unexpected(errors)


def build_schema(settings: GatewaySettings) -> strawberry.Schema:
    rules = validation_rules(
        max_depth=settings.max_query_depth, max_aliases=settings.max_aliases, max_cost=settings.max_complexity
    )
    # Operation hooks unwind in reverse order: ErrorCodes sees the masked errors, OperationMetrics the coded ones.
    extensions: list[Any] = [
        OperationMetrics,  # first of all: counts the final, coded outcome
        ErrorCodes,
        GatewayMaskErrors,
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: AddValidationRules(rules),
        lambda: CodedParserCache(maxsize=CACHE_SIZE),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    return GatewaySchema(query=Query, mutation=Mutation, extensions=extensions)


__all__ = ["CACHE_SIZE", "GatewaySchema", "build_schema"]
