"""WebHdfsPathTrigger: the serialized form rebuilds the same trigger (a restarted triggerer resumes it)."""

from __future__ import annotations

import importlib

from spot_operators.triggers.webhdfs import WebHdfsPathTrigger


def _rebuild(trigger: WebHdfsPathTrigger) -> WebHdfsPathTrigger:
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert isinstance(rebuilt, WebHdfsPathTrigger)
    return rebuilt


def test_round_trip_keeps_every_argument() -> None:
    trigger = WebHdfsPathTrigger(
        "http://nn:9870/webhdfs/v1/",
        "/user/spot/a b#c",
        user="spot",
        poll_interval=2,
        timeout=30,
        verify=False,
    )
    rebuilt = _rebuild(trigger)
    assert rebuilt.serialize() == trigger.serialize()
    assert (
        rebuilt.status_url()
        == "http://nn:9870/webhdfs/v1/user/spot/a%20b%23c?op=GETFILESTATUS&user.name=spot"
    )


def test_round_trip_without_user() -> None:
    trigger = WebHdfsPathTrigger("http://nn:9870/webhdfs/v1", "/tmp/x")
    assert _rebuild(trigger).serialize() == trigger.serialize()
    assert "user.name" not in _rebuild(trigger).status_url()
