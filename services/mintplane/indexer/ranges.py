"""Adaptive block-range sizing for eth_getLogs.

Providers cap a getLogs by block span, result count or response size, and the right span depends on how
busy the contracts are: dense mint blocks need a few blocks per request, quiet stretches thousands. The
size grows geometrically while requests succeed with room to spare, is cut to the provider's hint (or
halved) when a request is refused as too large or times out, and is steered toward `target_logs` so a
batch's database transaction stays a predictable size.
"""

from __future__ import annotations

from dataclasses import dataclass


class RangeCannotShrink(Exception):
    """A single block is still refused: nothing left to split."""


@dataclass
class AdaptiveRange:
    size: int = 100
    minimum: int = 1
    maximum: int = 10_000
    target_logs: int = 5_000
    growth: float = 2.0

    def __post_init__(self) -> None:
        self.size = max(self.minimum, min(self.maximum, self.size))

    def on_success(self, blocks: int, logs: int) -> None:
        """After a range of `blocks` blocks returned `logs` logs."""
        if blocks < self.size and logs <= self.target_logs:
            return  # capped by the head or a target: says nothing about the right size
        if logs > self.target_logs:
            scaled = int(blocks * self.target_logs / max(logs, 1))
            self.size = max(self.minimum, min(self.size, scaled))
        elif logs * 2 <= self.target_logs:
            self.size = min(self.maximum, max(self.size + 1, int(self.size * self.growth)))

    def on_too_large(self, blocks: int, hint: tuple[int, int] | None = None) -> None:
        """The provider refused a range of `blocks` blocks; `hint` is a range it says would work."""
        if blocks <= self.minimum:
            raise RangeCannotShrink(f"a range of {blocks} block(s) is still refused")
        if hint is not None and hint[1] >= hint[0]:
            suggested = hint[1] - hint[0] + 1
            if suggested < blocks:
                self.size = max(self.minimum, suggested)
                return
        self.size = max(self.minimum, blocks // 2)
