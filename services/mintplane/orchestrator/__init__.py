"""The orchestrator service (gRPC): Transaction intents: deploys and mints on chain on behalf of users."""
