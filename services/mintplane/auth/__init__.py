"""The auth service (gRPC): Sign-In-With-Ethereum: nonces, signature verification, sessions and access tokens."""
