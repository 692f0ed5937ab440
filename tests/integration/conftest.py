from __future__ import annotations

import aio_pika
import pytest


@pytest.fixture
async def amqp(settings):
    """A plain aio-pika channel on this run's vhost, for looking into queues."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()

