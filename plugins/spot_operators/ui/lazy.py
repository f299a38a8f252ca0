"""An ASGI app that builds the real one on first use, so loading the plugin costs nothing.

Why: Airflow imports plugins in the scheduler, the dag-processor and task processes too, where the
FastAPI app and Airflow's API security module (about a second of imports) are never used.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class LazyAsgiApp:
    """Calls ``module:function`` once (thread-safe) and forwards every ASGI call to its result."""

    def __init__(self, factory: str) -> None:
        module, _, function = factory.partition(":")
        if not module or not function:
            raise ValueError(f"factory must be 'module:function', got {factory!r}")
        self.factory = factory
        self._module = module
        self._function = function
        self._app: AsgiApp | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> AsgiApp:
        """The real app, built on first access."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = getattr(importlib.import_module(self._module), self._function)()
        assert self._app is not None
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def __repr__(self) -> str:
        return f"LazyAsgiApp({self.factory!r})"
