"""Settings of the wallet service; every field is also an env var (MINTPLANE_...)."""

from pydantic import Field

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class WalletSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["wallet"]
    # Host names (any port) whose EIP-4361 messages may link wallets: the front ends' and the auth
    # service's sign-in domain. JSON list in MINTPLANE_LINK_ALLOWED_DOMAINS.
    link_allowed_domains: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "mintplane.local"])
    # A signed message is accepted this long after its Issued At, whatever its Expiration Time says.
    link_max_age_seconds: int = Field(default=600, ge=30)
    # Tolerated client clock drift for Issued At / Not Before.
    link_clock_skew_seconds: int = Field(default=60, ge=0)
    # Lifetime of the messages CreateLinkChallenge hands out.
    link_challenge_ttl_seconds: int = Field(default=300, ge=30)
    # CAIP-2 chain -> JSON-RPC URL used for EIP-1271 (contract wallet) signature checks; chains not listed
    # accept EOA signatures only. JSON object in MINTPLANE_LINK_CHAIN_RPC_URLS.
    link_chain_rpc_urls: dict[str, str] = Field(default_factory=lambda: {"eip155:31337": "http://127.0.0.1:8545"})
