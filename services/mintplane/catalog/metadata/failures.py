"""Why a token's metadata could not be had, and whether trying again later can help.

Every stage (the tokenURI read, the URI rules, the fetcher, the document parser) raises one of these with a
short, human-readable reason: it is what ``tokens.metadata_error`` stores and the API shows, so it names
the cause ("refused: 10.0.0.1 is a private address", "body larger than 1 MiB") and never a stack trace.
"""

from __future__ import annotations


class MetadataFailure(Exception):
    """Base: ``reason`` is the text stored on the token; ``transient`` says whether a retry may succeed."""

    transient = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermanentFailure(MetadataFailure):
    """Retrying cannot help (refused address, too large, not JSON, 404, revert): the token is failed."""


class TransientFailure(MetadataFailure):
    """Timeouts, 429, 5xx, an unreachable node: the token stays pending and is retried with backoff."""

    transient = True


def size_text(limit: int) -> str:
    """1048576 -> "1 MiB", 65536 -> "64 KiB", 1500 -> "1500 bytes"."""
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= factor and limit % factor == 0:
            return f"{limit // factor} {unit}"
    return f"{limit} bytes"
