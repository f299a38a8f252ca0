"""Realistic sample data for ``make demo``, dropped into the collector folders of include/ingest_conf.json.

* flow: a real nfcapd collector fed by nfreplay, which sends the reference capture as NetFlow v9
  ``--replays`` times (3018 flows each; 100 replays = 301,800 flows), then stops nfcapd so it closes
  its file, which is moved into the collector folder as ``nfcapd.<YYYYMMDDhhmm>``;
* dns: the sample captures (UDP and TCP);
* proxy: the ProxySG sample plus a generated log of ``--proxy-lines`` lines an hour later (above the
  inline limit with the default, so it travels as an HDFS pointer).

Prints one JSON object with what was written and the tools' own counts (nfdump, tshark, data lines),
which ``scripts/demo.sh`` compares with Hive at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from spot_operators.config import IngestConfig, load_ingest_config  # noqa: E402

TOOL_TIMEOUT = 600


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _count_lines(args: list[str]) -> int:
    out = subprocess.run(args, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=True)
    return sum(1 for line in out.stdout.splitlines() if line.strip())


def nfcapd_file(sample: Path, replays: int, target_dir: Path) -> tuple[Path, int]:
    """Replay ``sample`` into a real nfcapd ``replays`` times; return the closed file and its flows."""
    work = Path(tempfile.mkdtemp(prefix="spot-demo-nfcapd-"))
    port = _free_udp_port()
    collector = subprocess.Popen(
        ["nfcapd", "-w", str(work), "-b", "127.0.0.1", "-p", str(port), "-t", "3600"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1)
        for _ in range(replays):
            subprocess.run(
                ["nfreplay", "-r", str(sample), "-H", "127.0.0.1", "-p", str(port), "-v", "9"],
                capture_output=True,
                timeout=TOOL_TIMEOUT,
                check=True,
            )
            time.sleep(0.05)  # let nfcapd drain its socket: UDP drops what it cannot read
        time.sleep(1)
    finally:
        collector.send_signal(signal.SIGTERM)  # nfcapd closes and renames its current file
        _, err = collector.communicate(timeout=60)
    files = sorted(p for p in work.glob("nfcapd.*") if not p.name.startswith("nfcapd.current"))
    if collector.returncode != 0 or not files:
        raise RuntimeError(f"nfcapd wrote no file in {work} (exit {collector.returncode}): {err[-2000:]}")
    flows = sum(_count_lines(["nfdump", "-r", str(f), "-q", "-N", "-o", "fmt:%ts"]) for f in files)
    stamp = datetime.now().strftime("%Y%m%d%H%M")
    target = target_dir / f"nfcapd.{stamp}"
    if len(files) > 1:  # an hour boundary passed: merge with nfdump, as nfcapd files are meant to be
        subprocess.run(
            ["nfdump", "-R", str(work), "-w", str(work / "merged")],
            capture_output=True,
            timeout=TOOL_TIMEOUT,
            check=True,
        )
        files = [work / "merged"]
    partial = target_dir / f".{target.name}.part"
    shutil.copyfile(files[0], partial)
    os.replace(partial, target)  # appears complete under its final name
    shutil.rmtree(work, ignore_errors=True)
    return target, flows


def proxy_log(sample: Path, lines: int, target: Path) -> int:
    """The sample's header and data lines, repeated from the next hour on, ``lines`` data lines."""
    text = sample.read_text(encoding="utf-8").splitlines()
    header = [line for line in text if line.startswith("#")]
    data = [line for line in text if line and not line.startswith("#")]
    start = datetime.strptime(data[0][:19], "%Y-%m-%d %H:%M:%S").replace(minute=0, second=0) + timedelta(
        hours=1
    )
    out = [
        f"{start + timedelta(seconds=n % 3600):%Y-%m-%d %H:%M:%S}" + data[n % len(data)][19:]
        for n in range(lines)
    ]
    partial = target.with_name(f".{target.name}.part")
    partial.write_text("\n".join([*header, *out]) + "\n", encoding="utf-8")
    os.replace(partial, target)
    return lines


def config_matches(config: IngestConfig, data_type: str, path: Path) -> bool:
    """Whether ``path`` is a file some pipeline of ``data_type`` picks up."""
    pipelines = config.pipelines_of_type(data_type).values()
    return path.is_file() and any(p.matches(path.name) for p in pipelines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--replays", type=int, default=100, help="nfreplay runs of the flow sample")
    parser.add_argument("--proxy-lines", type=int, default=5000)
    args = parser.parse_args()

    config = load_ingest_config()
    folders = {p.type: p.collector_path for p in reversed(list(config.pipelines.values()))}
    report: dict[str, object] = {}
    flow_sample = args.samples / "flow" / "nfcapd.202301251836"
    if "flow" in folders and flow_sample.exists():
        # Kept originals (post_ingest: keep) stay in the folder: a second demo reuses them instead of
        # adding another capture of the same flows.
        existing = sorted(p for p in folders["flow"].glob("nfcapd.*") if config_matches(config, "flow", p))
        if existing:
            flows = sum(_count_lines(["nfdump", "-r", str(f), "-q", "-N", "-o", "fmt:%ts"]) for f in existing)
            names = [p.name for p in existing]
        else:
            path, flows = nfcapd_file(flow_sample, args.replays, folders["flow"])
            names = [path.name]
        report["flow"] = {"files": names, "expected_rows": flows, "tool": "nfdump"}
    if "dns" in folders:
        captures = sorted((args.samples / "dns").glob("*.pcap"))
        responses = 0
        for capture in captures:
            shutil.copy2(capture, folders["dns"] / capture.name)
            responses += _count_lines(["tshark", "-r", str(capture), "-Y", "dns.flags.response == 1"])
        report["dns"] = {"files": [c.name for c in captures], "expected_rows": responses, "tool": "tshark"}
    proxy_sample = args.samples / "proxy" / "proxysg-main.log"
    if "proxy" in folders and proxy_sample.exists():
        shutil.copy2(proxy_sample, folders["proxy"] / proxy_sample.name)
        sample_lines = sum(
            1 for line in proxy_sample.read_text().splitlines() if line and not line.startswith("#")
        )
        big = folders["proxy"] / "proxysg-generated.log"
        if big.exists():  # rewriting it would make a new file version of the same rows
            generated = sum(1 for line in big.read_text().splitlines() if line and not line.startswith("#"))
        else:
            generated = proxy_log(proxy_sample, args.proxy_lines, big)
        report["proxy"] = {
            "files": [proxy_sample.name, "proxysg-generated.log"],
            "expected_rows": sample_lines + generated,
            "tool": "data lines",
        }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
