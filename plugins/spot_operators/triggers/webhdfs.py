"""Deferrable wait for an HDFS path, polled over WebHDFS without blocking the triggerer's loop.

Lives in plugins/ because the triggerer imports triggers by dotted path and does not put the DAG
folder on sys.path.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
from airflow.triggers.base import BaseTrigger, TriggerEvent


class WebHdfsPathTrigger(BaseTrigger):
    """Fire when ``path`` exists in HDFS, or with status ``timeout`` after ``timeout`` seconds.

    :param base_url: WebHDFS root, e.g. ``http://127.0.0.1:9870/webhdfs/v1``.
    :param path: absolute HDFS path.
    :param user: ``user.name`` for simple authentication (ignored by Kerberized clusters).
    """

    def __init__(
        self,
        base_url: str,
        path: str,
        user: str | None = None,
        poll_interval: float = 5.0,
        timeout: float = 3600.0,
        verify: bool = True,
    ) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.path = path
        self.user = user
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.verify = verify

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "base_url": self.base_url,
                "path": self.path,
                "user": self.user,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
                "verify": self.verify,
            },
        )

    def status_url(self) -> str:
        """The GETFILESTATUS URL of ``path`` (quoted: HDFS names may hold spaces and symbols)."""
        url = f"{self.base_url}{quote(self.path)}?op=GETFILESTATUS"
        return f"{url}&user.name={quote(self.user)}" if self.user else url

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        polls = 0
        async with httpx.AsyncClient(timeout=30.0, verify=self.verify) as client:
            while True:
                polls += 1
                response = await client.get(self.status_url())
                if response.status_code == 200:
                    yield TriggerEvent(
                        {
                            "status": "found",
                            "path": self.path,
                            "file_status": response.json().get("FileStatus", {}),
                            "polls": polls,
                            "waited_seconds": round(time.monotonic() - started, 3),
                            "triggerer_pid": os.getpid(),
                        }
                    )
                    return
                if response.status_code != 404:
                    yield TriggerEvent(
                        {
                            "status": "error",
                            "path": self.path,
                            "message": f"WebHDFS answered {response.status_code}: {response.text[:500]}",
                        }
                    )
                    return
                if time.monotonic() - started >= self.timeout:
                    yield TriggerEvent({"status": "timeout", "path": self.path, "polls": polls})
                    return
                self.log.info("HDFS path %s not there yet (poll %d)", self.path, polls)
                await asyncio.sleep(self.poll_interval)
