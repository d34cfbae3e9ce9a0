"""Prometheus metrics of the indexer (served on MINTPLANE_METRICS_PORT by the common gRPC bootstrap).

Rates (blocks/s, logs/s) are ``rate()`` over the counters; the gauges say where each scope stands.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HEAD_BLOCK = Gauge("mintplane_indexer_head_block", "Latest block reported by the endpoint in use.", ["chain"])
INDEXED_BLOCK = Gauge("mintplane_indexer_indexed_block", "Last checkpointed block.", ["scope"])
LAG_BLOCKS = Gauge("mintplane_indexer_lag_blocks", "head - confirmations - last indexed block.", ["scope"])
BLOCKS = Counter("mintplane_indexer_blocks_total", "Blocks indexed.", ["scope"])
LOGS = Counter("mintplane_indexer_logs_total", "Logs decoded.", ["scope"])
TRANSFERS = Counter("mintplane_indexer_transfers_total", "Transfers stored (new rows).", ["scope"])
SKIPPED_LOGS = Counter("mintplane_indexer_skipped_logs_total", "Logs of tracked contracts not decodable.", ["scope"])
REORGS = Counter("mintplane_indexer_reorgs_total", "Reorgs detected and rolled back.", ["scope"])
REORG_DEPTH = Histogram(
    "mintplane_indexer_reorg_depth_blocks", "Blocks rolled back per reorg.", ["scope"],
    buckets=(1, 2, 3, 5, 8, 12, 20, 32, 64, 128, 256),
)
RPC_ERRORS = Counter("mintplane_indexer_rpc_errors_total", "Failed RPC work by endpoint.", ["chain", "endpoint"])
RANGE_SPLITS = Counter("mintplane_indexer_range_splits_total", "getLogs ranges refused as too large.", ["scope"])
BATCH_SECONDS = Histogram(
    "mintplane_indexer_batch_seconds", "Time per batch stage.", ["scope", "stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTBOX_PENDING = Gauge("mintplane_indexer_outbox_pending", "Messages in the outbox not yet confirmed.", ["scope"])
PUBLISHED = Counter("mintplane_indexer_published_total", "Messages confirmed by the broker.", ["scope"])
PUBLISH_FAILURES = Counter("mintplane_indexer_publish_failures_total", "Outbox batches not confirmed.", ["scope"])
