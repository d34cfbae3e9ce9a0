"""The user service (gRPC): Users, profiles, preferences, stats and follows."""
