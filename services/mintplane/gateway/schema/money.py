"""Prices: exact amounts in the smallest unit (wei) as decimal strings, never floats."""

from __future__ import annotations

import strawberry

from mintplane.api.common.v1 import common_pb2


@strawberry.type(description="An exact amount: `amountWei` in the currency's smallest unit, as a decimal string.")
class Price:
    amount_wei: str
    currency_symbol: str | None
    decimals: int

    @classmethod
    def of(cls, message: object, field: str) -> Price | None:
        """The Price in `field` of a message, None when unset."""
        if not message.HasField(field):  # type: ignore[attr-defined]
            return None
        price: common_pb2.Price = getattr(message, field)
        return cls(amount_wei=price.amount_wei or "0", currency_symbol=price.currency_symbol or None,
                   decimals=price.decimals)
