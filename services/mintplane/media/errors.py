"""The media service's expected failures that mintplane.common.errors has no class for."""

from __future__ import annotations

import grpc

from mintplane.common.errors import DomainError


class DataLoss(DomainError):
    """The received bytes do not match the declared size or SHA-256 (media.proto: DATA_LOSS)."""

    code = grpc.StatusCode.DATA_LOSS
