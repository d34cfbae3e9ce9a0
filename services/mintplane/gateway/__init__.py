"""The GraphQL gateway: one typed HTTP API for web and mobile front ends over the domain gRPC services."""
