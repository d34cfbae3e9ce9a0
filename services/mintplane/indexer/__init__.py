"""The indexer service (gRPC): Follows chains, writes ownership and balances, publishes events."""
