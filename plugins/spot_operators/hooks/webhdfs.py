"""WebHDFS endpoint details from an Airflow connection, for code that speaks HTTP itself (triggers)."""

from __future__ import annotations

from dataclasses import dataclass

from airflow.sdk import BaseHook


@dataclass(frozen=True)
class WebHdfsEndpoint:
    """Where WebHDFS answers and as whom to ask."""

    base_url: str
    user: str | None
    verify: bool


def webhdfs_endpoint(conn_id: str) -> WebHdfsEndpoint:
    """Read a ``webhdfs`` connection the way the WebHDFS provider does (host, port, login, use_ssl)."""
    conn = BaseHook.get_connection(conn_id)
    if not conn.host:
        raise ValueError(f"connection {conn_id!r} has no host")
    extra = conn.extra_dejson
    use_ssl = str(extra.get("use_ssl", False)).lower() in {"true", "1", "yes"}
    scheme = "https" if use_ssl else "http"
    port = conn.port or (9871 if use_ssl else 9870)
    verify = str(extra.get("verify", True)).lower() not in {"false", "0", "no"}
    return WebHdfsEndpoint(
        base_url=f"{scheme}://{conn.host}:{port}/webhdfs/v1", user=conn.login or None, verify=verify
    )
