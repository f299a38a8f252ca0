#!/usr/bin/env bash
# `make demo`: with the stack up, run the main job and say where to look.
# Until the ingest DAGs exist, the main job is the smoke DAG, which touches Kafka, HDFS, Hive and Spark.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

echo "== airflow dags test spot_smoke"
airflow dags test spot_smoke
state="$(airflow dags list-runs spot_smoke -o plain 2>/dev/null | awk 'NR>1 {print $3; exit}')"
echo
echo "spot_smoke finished: ${state:-unknown}"
echo "Airflow UI:  http://$SPOT_BIND_HOST:$SPOT_AIRFLOW_PORT  (DAG spot_smoke; no login needed on the local stack)"
echo "HDFS UI:     http://$SPOT_BIND_HOST:$SPOT_HDFS_HTTP_PORT"
echo "Hive:        . scripts/env.sh && beeline -u jdbc:hive2://$SPOT_BIND_HOST:$SPOT_HIVE_PORT/default -n \$(id -un)"
echo "Stop it all: make stack-down"
[ "$state" = success ]
