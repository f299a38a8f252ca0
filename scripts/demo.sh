#!/usr/bin/env bash
# `make demo`: with the stack up, run the main job end to end and report what landed where.
#   1. spot_smoke (Kafka, HDFS, Hive, Spark) and spot_setup (topics, HDFS folders, Hive tables);
#   2. scripts/demo_data.py: ~300,000 flows through a real nfcapd (nfreplay of the reference capture),
#      the DNS sample captures, the ProxySG sample and a generated ProxySG log above the inline limit,
#      dropped into .stack/data/collector/<pipeline>/ (SPOT_DEMO_REPLAYS changes the flow volume);
#   3. spot_collect_<pipeline> for each pipeline, then spot_load_<type> for each type;
#   4. a report: files, rows per table against the tools' own counts, quarantined rows, time taken,
#      and where to look in the UI.
# The collect DAGs stop waiting after SPOT_DEMO_WAIT seconds (default 30) when no file is ready.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SPOT_ROOT"
started=$(date +%s)
wait_seconds="${SPOT_DEMO_WAIT:-30}"
samples="${SPOT_SAMPLE_DATA:-$SPOT_ROOT/../shared/data}"
logs="$SPOT_STACK_DIR/logs"

run() {
  local t0=$SECONDS
  printf '== airflow dags test %s ... ' "$1"
  airflow dags test "$@" >"$logs/demo-$1.log" 2>&1 \
    || { echo "FAILED"; tail -n 40 "$logs/demo-$1.log"; echo "full output: $logs/demo-$1.log"; exit 1; }
  echo "ok ($((SECONDS - t0)) s)"
}

run spot_smoke
run spot_setup

echo "== generating demo data (real nfcapd fed by nfreplay; DNS captures; ProxySG logs) ..."
python scripts/demo_data.py --samples "$samples" --replays "${SPOT_DEMO_REPLAYS:-100}" >"$logs/demo-data.json"
cat "$logs/demo-data.json"; echo

python - "$SPOT_ROOT/include/ingest_conf.json" <<'EOF' >"$logs/demo-pipelines.txt"
import sys
sys.path.insert(0, "plugins")
from spot_operators.config import load_ingest_config
config = load_ingest_config(sys.argv[1])
for name, pipeline in config.pipelines.items():
    if pipeline.message_format == "ingest":
        print("collect", name)
for data_type in sorted({p.type for p in config.pipelines.values()}):
    print("load", data_type)
print("db", config.dbname)
EOF
while read -r kind name; do
  case "$kind" in
    collect) run "spot_collect_$name" -c "{\"max_wait_seconds\": $wait_seconds, \"stable_seconds\": 2}" ;;
  esac
done <"$logs/demo-pipelines.txt"
while read -r kind name; do
  case "$kind" in
    load) run "spot_load_$name" ;;
  esac
done <"$logs/demo-pipelines.txt"
db=$(awk '$1 == "db" {print $2}' "$logs/demo-pipelines.txt")

echo
echo "== report"
(python - "$logs/demo-data.json" "$db" "$(( $(date +%s) - started ))" 2>&1 <<'EOF'
import json, sys
from airflow.providers.apache.hive.hooks.hive import HiveServer2Hook
expected = json.load(open(sys.argv[1]))
db, seconds = sys.argv[2], int(sys.argv[3])
hive = HiveServer2Hook(hiveserver2_conn_id="spot_hiveserver2")
print(f"{'table':12} {'files':>5} {'rows in Hive':>13} {'tool count':>11}  source of the count")
for data_type, item in expected.items():
    rows = hive.get_records(f"SELECT COUNT(*) FROM {db}.{data_type}")[0][0]
    print(f"{db + '.' + data_type:12} {len(item['files']):>5} {rows:>13,} {item['expected_rows']:>11,}  {item['tool']}")
quarantined = hive.get_records(f"SELECT data_type, COUNT(*) FROM {db}.quarantine GROUP BY data_type")
print("quarantined rows:", dict(quarantined) or 0, f"(table {db}.quarantine)")
print(f"time taken: {seconds // 60} min {seconds % 60} s")
print("(Hive counts include earlier runs; the tool counts are this run's files.)")
EOF
) | grep -v -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T.*\[(info|warning|debug) *\]'

echo
echo "Airflow UI:  http://$SPOT_BIND_HOST:$SPOT_AIRFLOW_PORT  (the runs above are under each DAG's Runs tab;"
echo "             the Ingest page in the nav; DAGs start paused)"
if [ "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS,,}" = "true" ]; then
  echo "  login:     none (all-admins mode)"
else
  python - "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" <<'PY'
import json, sys
for user, password in json.load(open(sys.argv[1])).items():
    print(f"  login:     {user} / {password}")
print(f"             (passwords in {sys.argv[1]})")
PY
fi
echo "HDFS UI:     http://$SPOT_BIND_HOST:$SPOT_HDFS_HTTP_PORT  (originals under /user/spot/<type>/binary/)"
echo "Hive:        . scripts/env.sh && beeline -u jdbc:hive2://$SPOT_BIND_HOST:$SPOT_HIVE_PORT/$db -n \$(id -un)"
echo "Stop it all: make stack-down"
