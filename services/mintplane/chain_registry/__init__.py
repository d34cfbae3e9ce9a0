"""The chain-registry service (gRPC): Chains, RPC endpoints, ABIs, tracked contracts and gas policy."""
