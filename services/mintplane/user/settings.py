"""Settings of the user service; every field is also an env var (MINTPLANE_...)."""

import uuid

from pydantic import Field

from mintplane.common.settings import SERVICE_PORTS, ServiceSettings


class UserSettings(ServiceSettings):
    grpc_port: int = SERVICE_PORTS["user"]
    # How long a cached user may live in Redis. Writes invalidate exactly; the TTL only bounds memory and
    # the staleness left by an invalidation that failed because Redis was unreachable.
    user_cache_ttl_seconds: int = Field(default=300, ge=1)
    # Accounts allowed to suspend and reactivate others (MINTPLANE_ADMIN_USER_IDS='["<uuid>", ...]').
    admin_user_ids: frozenset[uuid.UUID] = frozenset()
