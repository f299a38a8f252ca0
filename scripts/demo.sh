#!/usr/bin/env bash
# `make demo`: with the stack up, run the main job and say where to look.
#   1. spot_smoke: one run through Kafka, HDFS, Hive and Spark;
#   2. spot_setup: Kafka topics and Spot's HDFS folders of include/ingest_conf.json;
#   3. spot_collect_<pipeline> for each pipeline, on the sample captures in ../shared/data when they are
#      there (or on whatever you dropped into .stack/data/collector/<pipeline>/).
# The collect DAGs stop waiting after SPOT_DEMO_WAIT seconds (default 30) when no file is ready.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SPOT_ROOT"
wait_seconds="${SPOT_DEMO_WAIT:-30}"
samples="${SPOT_SAMPLE_DATA:-$SPOT_ROOT/../shared/data}"

run() {
  echo
  echo "== airflow dags test $*"
  airflow dags test "$@" >"$SPOT_STACK_DIR/logs/demo-$1.log" 2>&1 \
    || { tail -n 40 "$SPOT_STACK_DIR/logs/demo-$1.log"; echo "$1 failed; full output in $SPOT_STACK_DIR/logs/demo-$1.log"; exit 1; }
  grep -E "Returned value was|collected:|DagRun Finished" "$SPOT_STACK_DIR/logs/demo-$1.log" | sed -E 's/^[^]]*\] //' | cut -c1-220
}

run spot_smoke
run spot_setup

if [ -d "$samples" ]; then
  collector="$SPOT_STACK_DIR/data/collector"
  cp -n "$samples"/flow/nfcapd.* "$collector/flow_internals/" 2>/dev/null || true
  cp -n "$samples"/dns/*.pcap "$collector/dns_server_1/" 2>/dev/null || true
  cp -n "$samples"/proxy/*.log "$collector/proxy_bluecoat/" 2>/dev/null || true
  echo
  echo "Copied the sample captures from $samples into $collector/<pipeline>/"
fi
for pipeline in flow_internals dns_server_1 proxy_bluecoat; do
  run "spot_collect_$pipeline" -c "{\"max_wait_seconds\": $wait_seconds, \"stable_seconds\": 2}"
done

echo
echo "Airflow UI:  http://$SPOT_BIND_HOST:$SPOT_AIRFLOW_PORT  (no login on the local stack; DAGs start paused)"
echo "HDFS UI:     http://$SPOT_BIND_HOST:$SPOT_HDFS_HTTP_PORT  (originals under /user/spot/<type>/binary/)"
echo "Hive:        . scripts/env.sh && beeline -u jdbc:hive2://$SPOT_BIND_HOST:$SPOT_HIVE_PORT/default -n \$(id -un)"
echo "Stop it all: make stack-down"
