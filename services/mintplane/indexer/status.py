"""Live status of the lanes this process runs, as GetStatus reports it (rates over the last minute)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum


class State(Enum):
    STARTING = "STARTING"
    FOLLOWING = "FOLLOWING"
    BACKFILLING = "BACKFILLING"
    STALLED = "STALLED"
    ENDPOINTS_DOWN = "ENDPOINTS_DOWN"
    DISABLED = "DISABLED"


WINDOW_SECONDS = 60.0


@dataclass
class LaneStatus:
    chain: str
    scope: str
    confirmations: int
    state: State = State.STARTING
    head_block: int = 0
    last_block: int = 0
    last_block_hash: str = ""
    target_block: int | None = None
    reorg_count: int = 0
    last_reorg_depth: int = 0
    last_reorg_at: datetime | None = None
    endpoint_id: int = 0
    endpoint_url: str = ""
    tracked_contracts: int = 0
    last_error: str = ""
    checkpoint_updated_at: datetime | None = None
    outbox_pending: Callable[[], int] = lambda: 0
    outbox_error: Callable[[], str] = lambda: ""
    clock: Callable[[], float] = time.monotonic
    _samples: deque[tuple[float, int, int]] = field(default_factory=deque)
    _last_progress: float = field(default_factory=time.monotonic)

    @property
    def lag_blocks(self) -> int:
        return max(0, self.head_block - self.confirmations - self.last_block)

    def record_batch(self, blocks: int, logs: int, last_block: int, last_hash: str) -> None:
        now = self.clock()
        self._samples.append((now, blocks, logs))
        self._trim(now)
        self.last_block, self.last_block_hash = last_block, last_hash
        self.checkpoint_updated_at = datetime.now(UTC)
        self._last_progress = now

    def record_reorg(self, depth: int) -> None:
        self.reorg_count += 1
        self.last_reorg_depth = depth
        self.last_reorg_at = datetime.now(UTC)

    def idle(self) -> None:
        """Caught up: not progressing is expected, so it does not count as a stall."""
        self._last_progress = self.clock()

    def seconds_without_progress(self) -> float:
        return self.clock() - self._last_progress

    def _trim(self, now: float) -> None:
        while self._samples and now - self._samples[0][0] > WINDOW_SECONDS:
            self._samples.popleft()

    def rates(self) -> tuple[float, float]:
        """(blocks/s, logs/s) over the last minute, or since the first sample when younger."""
        now = self.clock()
        self._trim(now)
        if not self._samples:
            return 0.0, 0.0
        span = max(1.0, min(WINDOW_SECONDS, now - self._samples[0][0]))
        return sum(s[1] for s in self._samples) / span, sum(s[2] for s in self._samples) / span


@dataclass
class StatusBoard:
    """The lanes of this process, by scope. GetStatus asks by chain: the follower's lane wins."""

    lanes: dict[str, LaneStatus] = field(default_factory=dict)

    def add(self, lane: LaneStatus) -> LaneStatus:
        self.lanes[lane.scope] = lane
        return lane

    def for_chain(self, chain: str) -> LaneStatus | None:
        if chain in self.lanes:
            return self.lanes[chain]
        return next((lane for lane in self.lanes.values() if lane.chain == chain), None)
