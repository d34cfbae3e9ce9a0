"""The catalog service (gRPC): collections, tokens and activity, fed by the indexer's transfer events.

``python -m mintplane.catalog [consume]`` (see :mod:`mintplane.catalog.process`). Ingestion:
:mod:`consumer` (RabbitMQ, batched) -> :mod:`ingest` (per-event decisions) -> :mod:`repository` with
:mod:`ingestion_sql` (one transaction per batch). API: :mod:`collections`, :mod:`queries`, :mod:`views`.
"""
