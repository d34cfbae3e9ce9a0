"""Settings of the auth service; every field is also an env var (``MINTPLANE_<FIELD>``).

Lists are JSON in the environment, e.g. ``MINTPLANE_AUTH_ALLOWED_DOMAINS='["app.mintplane.io"]'``. Defaults
suit the local dev stack; a deployment sets at least the allowed domains and the JWT signing key.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings

DEV_CHAIN = "eip155:31337"


class AuthSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["auth"]

    # --- what a sign-in message may name ---------------------------------------------------------------
    # RFC 3986 authorities (host[:port]) allowed as the EIP-4361 `domain`; compared case-insensitively.
    auth_allowed_domains: list[str] = Field(
        default_factory=lambda: ["localhost", "localhost:3000", "localhost:8081", "127.0.0.1:8081"]
    )
    # Extra origins (scheme://authority) the message `URI` may name besides the domain's own origin.
    auth_allowed_uri_origins: list[str] = Field(default_factory=list)
    # CAIP-2 chains users may sign in on; empty allows every eip155 chain.
    auth_allowed_chains: list[str] = Field(default_factory=list)
    auth_default_statement: str = "Sign in to mintplane."

    # --- time --------------------------------------------------------------------------------------------
    auth_nonce_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    # How far a client clock may run ahead (Issued At / Not Before in the future).
    auth_clock_skew_seconds: int = Field(default=60, ge=0, le=600)
    auth_access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    auth_session_ttl_seconds: int = Field(default=30 * 86400, ge=3600)
    # How long ValidateSession trusts the Redis copy of a session's state before reading PostgreSQL.
    auth_session_cache_ttl_seconds: int = Field(default=30, ge=1, le=300)

    # --- access tokens (JWT) ------------------------------------------------------------------------------
    auth_jwt_issuer: str = "mintplane-auth"
    auth_jwt_audience: str = "mintplane"
    # PEM private key (Ed25519 -> EdDSA, or P-256 -> ES256). Unset: an ephemeral key per process (dev only).
    auth_jwt_private_key: SecretStr | None = None
    # PEM public keys (concatenated) of keys being rotated out: tokens they signed still verify.
    auth_jwt_previous_public_keys: str = ""

    # --- refresh tokens ------------------------------------------------------------------------------------
    # Rotated refresh-token hashes kept per session for reuse detection (newest first).
    auth_refresh_history_size: int = Field(default=100, ge=1, le=1000)

    # --- limits (the `limits` library's notation: "10/minute", "5 per 10 seconds") ----------------------
    auth_rate_limit_signin_ip: str = "30/minute"
    auth_rate_limit_signin_address: str = "10/minute"
    auth_rate_limit_nonce_address: str = "20/minute"
    auth_max_message_bytes: int = Field(default=4096, ge=512, le=65536)
    auth_max_signature_bytes: int = Field(default=4096, ge=65, le=65536)
    auth_max_user_agent_chars: int = Field(default=1024, ge=64)

    # --- parsing -----------------------------------------------------------------------------------------
    # siwe's ABNF parser is the reference grammar but ~10x slower than its regex parser (DESIGN section 7);
    # messages are also required to re-serialise byte for byte, which closes the regex parser's leniency.
    auth_siwe_abnf_parser: bool = False

    # --- other services ------------------------------------------------------------------------------------
    auth_user_target: str = f"127.0.0.1:{SERVICE_PORTS['user']}"
    auth_wallet_target: str = f"127.0.0.1:{SERVICE_PORTS['wallet']}"
    auth_chain_registry_target: str = f"127.0.0.1:{SERVICE_PORTS['chain_registry']}"
    auth_rpc_timeout_seconds: float = Field(default=5.0, gt=0)
    # When the chain registry knows no endpoint for the dev chain (eip155:31337), use `eth_rpc_url`.
    auth_dev_rpc_fallback: bool = True

    @field_validator("auth_allowed_domains", "auth_allowed_uri_origins", "auth_allowed_chains")
    @classmethod
    def _lowercase(cls, values: list[str]) -> list[str]:
        return [v.strip().lower() for v in values if v.strip()]
