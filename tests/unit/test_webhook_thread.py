"""The webhook server answers on a thread of its own: a review is answered while the operator's
event loop is blocked, the certificate refresh runs beside it there, and a stop frees the port.

Real HTTP over a real socket on 127.0.0.1 (Kopf's aiohttp server, plain HTTP here); the reviews go
through the checking layer (webhooks/review.py) as the API server's would.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
import urllib.request
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from modelgate.webhooks import review
from modelgate.webhooks.thread import THREAD, ThreadedWebhookServer

WAIT = 30.0


def _sync(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """The test run in an event loop of its own (the operator's, as far as the server knows)."""

    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _review(uid: str = "u-1") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "resource": {"group": "modelgate.io", "version": "v1alpha1", "resource": "modeldeployments"},
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"metadata": {"name": "m", "namespace": "ns"}, "spec": {}},
        },
    }


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{url}/stamp-deployment", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=WAIT) as resp:
        return dict(json.loads(resp.read()))


class _Serving:
    """A ThreadedWebhookServer consumed the way Kopf consumes it (its context manager, then the
    configs its call yields), in a task of the test's loop."""

    def __init__(self, fn: Any, **kwargs: Any) -> None:
        self.port = _free_port()
        self.server = ThreadedWebhookServer(addr="127.0.0.1", port=self.port, insecure=True, **kwargs)
        self.fn = fn
        self.url: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        async with self.server as server:
            async for config in server(self.fn):
                self.url.set_result(config["url"].rstrip("/"))


@_sync
async def test_a_review_is_answered_on_the_webhook_thread_while_the_operator_loop_is_blocked() -> None:
    ran_on: list[str] = []

    async def fn(request: Any, **_: Any) -> dict[str, Any]:
        ran_on.append(threading.current_thread().name)
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": request["request"]["uid"], "allowed": True}}  # fmt: skip

    serving = _Serving(fn)
    task = asyncio.create_task(serving.run())
    url = await asyncio.wait_for(asyncio.shield(serving.url), WAIT)
    answered = threading.Event()
    answers: list[dict[str, Any]] = []

    def client() -> None:
        answers.append(_post(url, _review()))
        answered.set()

    threading.Thread(target=client, daemon=True).start()
    # The operator's loop does not run while this waits: an answer served by it could not come.
    assert answered.wait(WAIT), "no answer while the operator's event loop was blocked"
    assert answers[0]["response"] == {"uid": "u-1", "allowed": True}
    assert ran_on == [THREAD]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(t.name == THREAD for t in threading.enumerate())
    with socket.socket() as s:  # nothing listens on the port once stopped (its connection may linger)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", serving.port))


@_sync
async def test_the_refresh_beside_it_runs_on_the_webhook_thread_and_stops_with_it() -> None:
    seen: list[str] = []
    stopped = threading.Event()

    async def refresh() -> None:
        seen.append(threading.current_thread().name)
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    async def fn(request: Any, **_: Any) -> dict[str, Any]:
        raise AssertionError("not called")

    serving = _Serving(fn, alongside=refresh)
    task = asyncio.create_task(serving.run())
    await asyncio.wait_for(asyncio.shield(serving.url), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [THREAD]
    assert stopped.is_set()


@_sync
async def test_a_server_that_cannot_start_fails_the_call_with_its_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = ThreadedWebhookServer(addr="127.0.0.1", port=taken.getsockname()[1], insecure=True)

        async def fn(request: Any, **_: Any) -> dict[str, Any]:
            raise AssertionError("not called")

        with pytest.raises(OSError, match="address already in use"):
            async with server:
                async for _config in server(fn):
                    pass
    assert not any(t.name == THREAD for t in threading.enumerate())


def _changing(times: int) -> Any:
    """A webhook function that meets an index changing size under it `times` times, then answers."""
    calls = {"n": 0}

    async def fn(request: Any, **_: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] <= times:
            index = {1: 1}
            for _k in index:
                index[len(index) + 1] = 1  # RuntimeError: dictionary changed size during iteration
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": request["request"]["uid"], "allowed": True}}  # fmt: skip

    return fn, calls


@_sync
async def test_a_review_that_met_an_index_changing_is_answered_again() -> None:
    fn, calls = _changing(review.REREADS)
    result = await review.answer(fn, json.dumps(_review()).encode())
    assert result.body["response"]["allowed"] is True
    assert calls["n"] == review.REREADS + 1


@_sync
async def test_a_review_that_keeps_meeting_a_change_is_refused_not_allowed() -> None:
    fn, calls = _changing(review.REREADS + 1)
    result = await review.answer(fn, json.dumps(_review()).encode())
    assert result.body["response"]["allowed"] is False
    assert result.body["response"]["status"]["code"] == 500
    assert "changed size during iteration" in result.body["response"]["status"]["message"]
    assert calls["n"] == review.REREADS + 1


@_sync
async def test_an_index_whose_keys_changed_under_the_review_is_read_again() -> None:
    calls = {"n": 0}

    async def fn(request: Any, **_: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            index = {1: 1}
            for k in index:  # same size, another key: "dictionary keys changed during iteration"
                del index[k]
                index[k + 1] = 1
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": request["request"]["uid"], "allowed": True}}  # fmt: skip

    result = await review.answer(fn, json.dumps(_review()).encode())
    assert result.body["response"]["allowed"] is True
    assert calls["n"] == 2


@_sync
async def test_another_runtime_error_is_not_repeated() -> None:
    calls = {"n": 0}

    async def fn(request: Any, **_: Any) -> dict[str, Any]:
        calls["n"] += 1
        raise RuntimeError("something else")

    result = await review.answer(fn, json.dumps(_review()).encode())
    assert result.body["response"]["allowed"] is False
    assert calls["n"] == 1
