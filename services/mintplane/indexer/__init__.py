"""The indexer: follows chains, writes ownership and balances, publishes transfer events.

``python -m mintplane.indexer [--chain <caip2> | backfill ...]`` (see :mod:`mintplane.indexer.cli`).

Module map: :mod:`lane` (the per-batch loop, reorgs, recovery), :mod:`chain` (consistent batch reads),
:mod:`decode` (topics/data to transfers), :mod:`endpoints` + :mod:`rpc` (failover, rate limits, JSON-RPC),
:mod:`ranges` (adaptive getLogs ranges), :mod:`reorg` (common ancestor), :mod:`repository` (PostgreSQL),
:mod:`documents` (MongoDB raw events and outbox), :mod:`outbox` + :mod:`publisher` (RabbitMQ with
confirms), :mod:`registry` (chain-registry client), :mod:`status` + :mod:`metrics` + :mod:`queries`
(what GetStatus and the list RPCs report), :mod:`runner` (a lane as a process).
"""
