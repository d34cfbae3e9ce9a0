"""AMQP publishing with publisher confirms, in batches, and consuming: the one way services use RabbitMQ.

A batch is published without waiting message by message: every publish is sent, then all broker confirms
are awaited together, so a batch costs about one round trip. A nack or a returned (unroutable) message
raises, so callers (the indexer's outbox) keep the message and retry instead of losing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection, ExchangeType

from mintplane.common.settings import InfraSettings

EVENTS_EXCHANGE = "mintplane.events"


@dataclass(frozen=True)
class OutgoingMessage:
    routing_key: str
    body: bytes
    message_id: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str = "application/json"


class PublishFailed(RuntimeError):
    """The broker did not confirm every message of a batch."""


async def connect(settings: InfraSettings, *, name: str = "mintplane") -> AbstractRobustConnection:
    return await aio_pika.connect_robust(
        settings.amqp_url.get_secret_value(), client_properties={"connection_name": name}
    )


class ConfirmingPublisher:
    """Publishes to one durable topic exchange on a channel with publisher confirms on."""

    def __init__(self, connection: AbstractRobustConnection, exchange_name: str = EVENTS_EXCHANGE) -> None:
        self._connection = connection
        self._exchange_name = exchange_name
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def _ensure_exchange(self) -> aio_pika.abc.AbstractExchange:
        if self._exchange is None:
            channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await channel.declare_exchange(self._exchange_name, ExchangeType.TOPIC, durable=True)
        return self._exchange

    async def publish_batch(self, messages: Sequence[OutgoingMessage], *, timeout: float = 30.0) -> None:
        """Publish all messages persistently and return once the broker confirmed every one of them."""
        if not messages:
            return
        exchange = await self._ensure_exchange()
        pending = [
            exchange.publish(
                aio_pika.Message(
                    body=message.body,
                    message_id=message.message_id,
                    headers=message.headers,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=message.routing_key,
                mandatory=True,
            )
            for message in messages
        ]
        results = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout)
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise PublishFailed(f"{len(failures)} of {len(messages)} messages not confirmed: {failures[0]!r}")


async def declare_queue(
    connection: AbstractRobustConnection, queue: str, routing_keys: Sequence[str], *, prefetch: int = 256,
    exchange_name: str = EVENTS_EXCHANGE,
) -> tuple[aio_pika.abc.AbstractChannel, aio_pika.abc.AbstractQueue]:
    """Declare a durable queue bound to the events exchange under each routing key (idempotent)."""
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    exchange = await channel.declare_exchange(exchange_name, ExchangeType.TOPIC, durable=True)
    declared = await channel.declare_queue(queue, durable=True)
    for key in routing_keys:
        await declared.bind(exchange, routing_key=key)
    return channel, declared


Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]


async def consume(queue: aio_pika.abc.AbstractQueue, handler: Handler) -> str:
    """Ack after the handler returns, reject-and-requeue when it raises: at-least-once delivery, so
    handlers must be idempotent. Returns the consumer tag."""

    async def on_message(message: AbstractIncomingMessage) -> None:
        async with message.process(requeue=True):
            await handler(message)

    return await queue.consume(on_message)
