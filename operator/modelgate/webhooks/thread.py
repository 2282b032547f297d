"""The admission webhook server on a thread and an event loop of its own.

The API server waits at most `timeoutSeconds` (5 s) for an answer, and with failurePolicy Fail a
late answer refuses the user's request. Served by the operator's event loop, an answer waited
behind everything ready in it: at 10,000 models the watch events of a bulk apply, a monitoring
round and the reconcile passes they wake (bench/monitoring: `stamp-deployment` timed out at 9,999
models). On a loop of its own an answer waits for the interpreter lock at most (handed over every
5 ms), never for the operator's queue.

What runs on this thread: the HTTP server, Kopf's admission engine with our webhook handlers, and
the certificate refresh given as `alongside` (the SSLContext is then loaded and used by one thread
only: OpenSSL does not allow a context to change while another thread makes connections from it).
The handlers read Kopf's indexes while the operator's loop updates them: a review that met an
index changing size under it is answered again (review.answer); an index read between two updates
is as stale as the watch can always be, which the handlers allow for (the gate decides again).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any, cast

from kopf._cogs.structs import reviews

from modelgate.webhooks.review import CheckedWebhookServer

THREAD = "modelgate-webhooks"

_Started = tuple[reviews.WebhookClientConfig, asyncio.AbstractEventLoop, asyncio.Event]


class ThreadedWebhookServer(CheckedWebhookServer):
    """CheckedWebhookServer, served on thread `modelgate-webhooks` until Kopf stops it."""

    def __init__(
        self, *args: Any, alongside: Callable[[], Coroutine[Any, Any, None]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.alongside = alongside
        """A task to run on the server's loop while it serves (the certificate refresh)."""

    async def __call__(self, fn: reviews.WebhookFn) -> AsyncIterator[reviews.WebhookClientConfig]:
        started: concurrent.futures.Future[_Started] = concurrent.futures.Future()
        ended: concurrent.futures.Future[None] = concurrent.futures.Future()
        thread = threading.Thread(target=self._thread, args=(fn, started, ended), name=THREAD, daemon=True)
        thread.start()
        try:
            config, loop, stopping = await asyncio.wrap_future(started)
        except BaseException:
            # The thread set its error and is ending: the call returns once it has (and freed the port).
            await asyncio.to_thread(thread.join)
            raise
        try:
            yield config
            await asyncio.shield(asyncio.wrap_future(ended))  # returns only if the server fails
        finally:
            with contextlib.suppress(RuntimeError):  # its loop closed already: it has failed
                loop.call_soon_threadsafe(stopping.set)
            # Joined before Kopf's context manager closes the generators it keeps, so that it finds
            # the server's closed already (it would otherwise close it from this loop).
            await asyncio.to_thread(thread.join)

    def _thread(
        self,
        fn: reviews.WebhookFn,
        started: concurrent.futures.Future[_Started],
        ended: concurrent.futures.Future[None],
    ) -> None:
        try:
            asyncio.run(self._serve_here(fn, started))
        except BaseException as e:
            if not started.done():
                started.set_exception(e)
            ended.set_exception(e)
        else:
            ended.set_result(None)

    async def _serve_here(self, fn: reviews.WebhookFn, started: concurrent.futures.Future[_Started]) -> None:
        stopping = asyncio.Event()
        # Kopf's server (with our checked `_serve`), on this loop.
        served = cast(AsyncGenerator[reviews.WebhookClientConfig, None], super().__call__(fn))
        side: asyncio.Task[None] | None = None
        try:
            config = await anext(served)
            if self.alongside is not None:
                side = asyncio.create_task(self.alongside(), name="modelgate-webhook-cert")
            started.set_result((config, asyncio.get_running_loop(), stopping))
            await stopping.wait()
        finally:
            if side is not None:
                side.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await side
            await served.aclose()
