"""The catalog service (gRPC): Collections, tokens, traits and marketplace activity; consumes indexer events."""
