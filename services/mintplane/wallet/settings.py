"""Settings of the wallet service; every field is also an env var (MINTPLANE_...)."""

from pydantic import Field

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings
from mintplane.common.signatures import MAX_SIGNATURE_BYTES


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
    # CAIP-2 chain -> JSON-RPC URL used for contract-wallet signature checks (ERC-1271 for deployed wallets,
    # ERC-6492 for not-yet-deployed ones); chains not listed accept EOA signatures only. JSON object in
    # MINTPLANE_LINK_CHAIN_RPC_URLS.
    link_chain_rpc_urls: dict[str, str] = Field(default_factory=lambda: {"eip155:31337": "http://127.0.0.1:8545"})
    # Upper bound of one contract-wallet check (an eth_call); past it LinkWallet answers UNAVAILABLE.
    link_rpc_timeout_seconds: float = Field(default=5.0, gt=0)
    # Longest signature accepted (hex-decoded bytes); ERC-6492 wrappers of passkey wallets run to a few KiB.
    # Keep it at least the auth service's MINTPLANE_AUTH_MAX_SIGNATURE_BYTES, or first sign-ins fail here.
    link_max_signature_bytes: int = Field(default=MAX_SIGNATURE_BYTES, ge=65, le=65536)
