"""The embedded demo broker with real clients: Mosquitto CLI tools and aiomqtt/paho (MQTT 3.1.1).

The persistence tests follow what our collector does: a stable client id, ``clean_session=False``
and paho's manual ack, so a PUBACK leaves only once a message has been dealt with.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from collector.broker import AMQTT_PUBACK_TIMEOUT_S, EmbeddedBroker

V311 = aiomqtt.ProtocolVersion.V311
TIMEOUT = 10.0


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as b:
        yield b


def manual_ack_client(broker: EmbeddedBroker, client_id: str) -> aiomqtt.Client:
    """A persistent-session subscriber that acknowledges only when told to."""
    client = aiomqtt.Client(
        "127.0.0.1", broker.port, identifier=client_id, clean_session=False, protocol=V311
    )
    client._client.manual_ack_set(True)
    return client


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    client._client.ack(message.mid, message.qos)


async def publish(broker: EmbeddedBroker, topic: str, *payloads: str) -> None:
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, identifier=f"pub-{uuid.uuid4().hex[:8]}", protocol=V311
    ) as client:
        for payload in payloads:
            await client.publish(topic, payload, qos=1)


async def run_cli(*args: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode()
    return out


async def receive(client: aiomqtt.Client, count: int) -> list[aiomqtt.Message]:
    received: list[aiomqtt.Message] = []
    async with asyncio.timeout(TIMEOUT):
        async for message in client.messages:
            received.append(message)
            if len(received) == count:
                break
    return received


async def session_backlog(
    broker: EmbeddedBroker, client: aiomqtt.Client, topic_filter: str
) -> list[aiomqtt.Message]:
    """Everything the broker sends ``client`` on (re)connect, acknowledging each message.

    amqtt sends a returning session's backlog before it answers the SUBSCRIBE, so once the
    SUBACK is in and a marker published afterwards has arrived, the backlog is complete.
    """
    marker = f"marker-{uuid.uuid4().hex}"
    received: list[aiomqtt.Message] = []

    async def consume() -> None:
        async for message in client.messages:
            ack(client, message)
            if message.payload == marker.encode():
                return
            received.append(message)

    consumer = asyncio.create_task(consume())
    await client.subscribe(topic_filter, qos=1)
    await publish(broker, topic_filter.replace("#", "marker"), marker)
    await asyncio.wait_for(consumer, TIMEOUT)
    return received


def payloads(messages: list[aiomqtt.Message]) -> Counter[bytes]:
    return Counter(bytes(m.payload) for m in messages)


async def test_port_zero_picks_a_free_port_and_reports_url() -> None:
    async with EmbeddedBroker() as first, EmbeddedBroker() as second:
        assert first.port != second.port
        assert first.url == f"mqtt://127.0.0.1:{first.port}"
    with pytest.raises(RuntimeError):
        _ = first.port


async def test_fixed_port_is_used_and_reusable_after_stop(broker: EmbeddedBroker) -> None:
    port = broker.port
    await broker.stop()
    async with EmbeddedBroker(port) as again:
        assert again.port == port
        await publish(again, "t/x", "hello")  # the listener accepts clients


async def test_taken_port_raises_oserror() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            await EmbeddedBroker(taken.getsockname()[1]).start()


async def test_mosquitto_pub_qos1_reaches_subscriber(broker: EmbeddedBroker) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port, protocol=V311) as sub:
        await sub.subscribe("plant/+/nox", qos=1)
        await run_cli(
            "mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", "mqttv311",
            "-q", "1", "-t", "plant/b1/nox", "-m", '{"value": 87.5}',
        )  # fmt: skip
        [message] = await receive(sub, 1)
    assert message.topic.value == "plant/b1/nox"
    assert message.payload == b'{"value": 87.5}'
    assert message.qos == 1


async def test_mosquitto_sub_receives_retained_qos1_message(broker: EmbeddedBroker) -> None:
    await run_cli(
        "mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-r",
        "-t", "plant/b1/o2", "-m", "6.1",
    )  # fmt: skip
    out = await run_cli(
        "mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-C", "1",
        "-W", "5", "-v", "-t", "plant/#",
    )  # fmt: skip
    assert out.decode().strip() == "plant/b1/o2 6.1"


async def test_unacked_and_offline_messages_are_redelivered_once(broker: EmbeddedBroker) -> None:
    # First connection: receive 5 messages, acknowledge only the first two, go away.
    async with manual_ack_client(broker, "collector-1") as client:
        await client.subscribe("data/#", qos=1)
        await publish(broker, "data/x", "0", "1", "2", "3", "4")
        first = await receive(client, 5)
        for message in first[:2]:
            ack(client, message)
    assert payloads(first) == Counter([b"0", b"1", b"2", b"3", b"4"])

    await publish(broker, "data/x", "while-away")

    # Reconnect with the same id: the un-acked three and the one published meanwhile, each
    # exactly once, as ordinary (not retained) messages.
    async with manual_ack_client(broker, "collector-1") as client:
        backlog = await session_backlog(broker, client, "data/#")
    assert payloads(backlog) == Counter([b"2", b"3", b"4", b"while-away"])
    assert not any(m.retain for m in backlog)

    # Everything was acknowledged: nothing comes back.
    async with manual_ack_client(broker, "collector-1") as client:
        assert await session_backlog(broker, client, "data/#") == []


async def test_reconnect_while_old_connection_lingers_takes_the_session_over(
    broker: EmbeddedBroker,
) -> None:
    # After a network failure the broker may still hold the old (half-open) connection when the
    # client returns. The new connection must get the backlog and then live traffic.
    old = manual_ack_client(broker, "collector-3")
    await old.__aenter__()
    try:
        await old.subscribe("takeover/#", qos=1)
        await publish(broker, "takeover/x", "1", "2")
        await receive(old, 2)  # never acknowledged
        async with manual_ack_client(broker, "collector-3") as new:
            backlog = await session_backlog(broker, new, "takeover/#")
            assert payloads(backlog) == Counter([b"1", b"2"])
            await publish(broker, "takeover/x", "3")
            [live] = await receive(new, 1)
            assert live.payload == b"3"
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await old.__aexit__(None, None, None)


async def test_messages_unacked_beyond_amqtt_puback_timeout_are_kept(
    broker: EmbeddedBroker,
) -> None:
    # Stock amqtt forgets a QoS 1 message whose PUBACK is later than 5 s; storage that is slow
    # or down makes our collector ack that late.
    async with manual_ack_client(broker, "collector-2") as client:
        await client.subscribe("slow/#", qos=1)
        await publish(broker, "slow/x", "a", "b")
        first = await receive(client, 2)
        await asyncio.sleep(AMQTT_PUBACK_TIMEOUT_S + 0.5)  # hold the acks past the timeout
        late = next(m for m in first if m.payload == b"a")
        ack(client, late)  # a late ack still counts (sent before DISCONNECT on the same stream)

    async with manual_ack_client(broker, "collector-2") as client:
        backlog = await session_backlog(broker, client, "slow/#")
    assert payloads(backlog) == Counter([b"b"])


async def test_clean_session_client_gets_no_backlog(broker: EmbeddedBroker) -> None:
    def clean_client() -> aiomqtt.Client:
        client = aiomqtt.Client(
            "127.0.0.1", broker.port, identifier="clean-1", clean_session=True, protocol=V311
        )
        client._client.manual_ack_set(True)
        return client

    async with clean_client() as client:
        await client.subscribe("clean/#", qos=1)
        await publish(broker, "clean/x", "1")
        await receive(client, 1)  # not acknowledged
    await publish(broker, "clean/x", "2")
    async with clean_client() as client:
        assert await session_backlog(broker, client, "clean/#") == []
