"""Shared Hive clean-up for integration tests: drop what a test created and prove it is gone."""

from __future__ import annotations

from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook
from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook


def hdfs_path(uri: str) -> str:
    """``hdfs://host:port/a/b`` -> ``/a/b`` (WebHDFS takes paths)."""
    if uri.startswith("hdfs://"):
        return "/" + uri.split("/", 3)[3]
    return uri


def drop_database(hook: HiveServer2Hook, db: str, location: str | None) -> None:
    """DROP DATABASE ... CASCADE must succeed, and the database and its folder must be gone."""
    hook.run(f"DROP DATABASE IF EXISTS {db} CASCADE")
    remaining = [row[0] for row in hook.get_records(f"SHOW DATABASES LIKE '{db}'")]
    assert remaining == [], f"database {db} still exists after DROP DATABASE CASCADE"
    if location:
        client = WebHDFSHook(webhdfs_conn_id="spot_webhdfs").get_conn()
        leftover = client.status(hdfs_path(location), strict=False)
        assert leftover is None, f"folder of dropped database {db} still in HDFS: {location}"
