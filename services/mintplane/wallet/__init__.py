"""The wallet service (gRPC): Wallets linked to users by signed proof, their activity and verifications."""
