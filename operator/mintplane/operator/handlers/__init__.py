"""Kopf handlers, one module per kind; importing this package registers them all."""

from mintplane.operator.handlers import chain, collection, endpoint, indexer_job

__all__ = ["chain", "collection", "endpoint", "indexer_job"]
