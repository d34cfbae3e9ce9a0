"""Shared building blocks every mintplane service uses: settings, logging, pools, gRPC bootstrap, errors."""
