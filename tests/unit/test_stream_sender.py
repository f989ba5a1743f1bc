"""The stage 1 sender: records go straight to the producer; a refused one crashes the app."""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline.stream.app import Sender


class _Topic:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []

    def get_topic_name(self) -> str:
        return "autocap.enriched"

    async def send(self, *, key: bytes | None, value: bytes) -> None:
        self.sent.append((key, value))


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.futures: list[asyncio.Future[Any]] = []

    async def send(self, *args: Any) -> asyncio.Future[Any]:
        self.sent.append(args)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


class _App:
    def __init__(self) -> None:
        self.producer = _Producer()
        self.crashed: list[BaseException] = []

    async def crash(self, exc: BaseException) -> None:
        self.crashed.append(exc)


def test_records_go_to_the_producer_and_a_refusal_crashes_the_app_once() -> None:
    async def scenario() -> _App:
        app = _App()
        send = Sender(app)  # type: ignore[arg-type]
        await send(_Topic(), b"k", b"v1")
        await send(_Topic(), None, b"v2")
        app.producer.futures[0].set_result("ok")
        app.producer.futures[1].set_exception(RuntimeError("broker refused"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert send.crashing is not None
        await send.crashing
        return app

    app = asyncio.run(scenario())
    assert app.producer.sent == [
        ("autocap.enriched", b"k", b"v1", None, None, None),
        ("autocap.enriched", None, b"v2", None, None, None),
    ]
    assert [str(e) for e in app.crashed] == ["broker refused"]


def test_acknowledged_records_do_not_crash() -> None:
    async def scenario() -> tuple[_App, Sender]:
        app = _App()
        send = Sender(app)  # type: ignore[arg-type]
        await send(_Topic(), b"k", b"v")
        app.producer.futures[0].set_result("ok")
        await asyncio.sleep(0)
        return app, send

    app, send = asyncio.run(scenario())
    assert app.crashed == [] and send.crashing is None


def test_in_a_transaction_records_go_through_the_topic() -> None:
    async def scenario() -> tuple[_App, _Topic]:
        app, topic = _App(), _Topic()
        await Sender(app, transactional=True)(topic, b"k", b"v")  # type: ignore[arg-type]
        return app, topic

    app, topic = asyncio.run(scenario())
    assert topic.sent == [(b"k", b"v")]
    assert app.producer.sent == []  # not around Faust's transaction
