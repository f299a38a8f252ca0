# shellcheck shell=bash
# Source this file to get the local stack on your shell: the venv, spark-submit, beeline, JAVA_HOME,
# AIRFLOW_HOME, the service ports and the Airflow connections that point at them.
#   . scripts/env.sh
# Every port can be overridden by exporting the variable before sourcing.

SPOT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SPOT_ROOT
export SPOT_PROJECT_ROOT="$SPOT_ROOT"
export SPOT_STACK_DIR="${SPOT_STACK_DIR:-$SPOT_ROOT/.stack}"
export SPOT_VENV="${SPOT_VENV:-$SPOT_ROOT/.venv}"

export SPOT_BIND_HOST="${SPOT_BIND_HOST:-127.0.0.1}"
export SPOT_KAFKA_PORT="${SPOT_KAFKA_PORT:-9092}"
export SPOT_KAFKA_CONTROLLER_PORT="${SPOT_KAFKA_CONTROLLER_PORT:-9093}"
# A second listener with SASL/PLAIN (user "spot", password in .stack/run/kafka-sasl-password): the
# secured-Kafka path of the listener is tested against it.
export SPOT_KAFKA_SASL_PORT="${SPOT_KAFKA_SASL_PORT:-9094}"
export SPOT_HDFS_RPC_PORT="${SPOT_HDFS_RPC_PORT:-8020}"
export SPOT_HDFS_HTTP_PORT="${SPOT_HDFS_HTTP_PORT:-9870}"
export SPOT_DATANODE_PORT="${SPOT_DATANODE_PORT:-9866}"
export SPOT_DATANODE_HTTP_PORT="${SPOT_DATANODE_HTTP_PORT:-9864}"
export SPOT_DATANODE_IPC_PORT="${SPOT_DATANODE_IPC_PORT:-9867}"
export SPOT_METASTORE_PORT="${SPOT_METASTORE_PORT:-9083}"
export SPOT_HIVE_PORT="${SPOT_HIVE_PORT:-10000}"
export SPOT_AIRFLOW_PORT="${SPOT_AIRFLOW_PORT:-8080}"

if [ -z "${JAVA_HOME:-}" ]; then
  for candidate in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 /usr/lib/jvm/default-java; do
    if [ -x "$candidate/bin/java" ]; then JAVA_HOME="$candidate"; break; fi
  done
fi
export JAVA_HOME

for _spot_pyspark in "$SPOT_VENV"/lib/python3*/site-packages/pyspark; do
  if [ -d "$_spot_pyspark" ]; then export SPARK_HOME="$_spot_pyspark"; fi
done
unset _spot_pyspark
export PYSPARK_PYTHON="$SPOT_VENV/bin/python"
export SPARK_LOCAL_IP="$SPOT_BIND_HOST"
export HADOOP_CONF_DIR="$SPOT_STACK_DIR/conf/hadoop"
export SPARK_CONF_DIR="$SPOT_STACK_DIR/conf/spark"
export SPOT_SPARK_JARS_DIR="$SPOT_STACK_DIR/lib/spark"

case ":$PATH:" in
  *":$SPOT_VENV/bin:"*) ;;
  *) PATH="$SPOT_VENV/bin:${SPARK_HOME:+$SPARK_HOME/bin:}${JAVA_HOME:+$JAVA_HOME/bin:}$PATH" ;;
esac
export PATH

# Airflow 3.3: SQLite by default (set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN for Postgres).
export AIRFLOW_HOME="${AIRFLOW_HOME:-$SPOT_STACK_DIR/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$SPOT_ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$SPOT_ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
# The UI asks for a login: users admin (Admin role) and viewer (Viewer role); their passwords are made
# once by scripts/stack.sh into the file below (mode 600) and printed by `make demo`.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS:-False}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin,viewer:viewer}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/simple_auth_manager_passwords.json}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://$SPOT_BIND_HOST:$SPOT_AIRFLOW_PORT/execution/"
export AIRFLOW__API__BASE_URL="http://$SPOT_BIND_HOST:$SPOT_AIRFLOW_PORT"
export AIRFLOW__API__HOST="$SPOT_BIND_HOST"
export AIRFLOW__API__PORT="$SPOT_AIRFLOW_PORT"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-20}"
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=True
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}"
if [ -f "$SPOT_STACK_DIR/run/airflow-secret" ]; then
  AIRFLOW__API_AUTH__JWT_SECRET="$(cat "$SPOT_STACK_DIR/run/airflow-secret")"
  export AIRFLOW__API_AUTH__JWT_SECRET
fi

# Connections, derived from the ports above (env connections take precedence over the metadata DB).
export AIRFLOW_CONN_SPOT_KAFKA="{\"conn_type\": \"kafka\", \"extra\": {\"bootstrap.servers\": \"$SPOT_BIND_HOST:$SPOT_KAFKA_PORT\", \"group.id\": \"spot-airflow\", \"auto.offset.reset\": \"earliest\", \"enable.idempotence\": \"true\", \"acks\": \"all\"}}"
export AIRFLOW_CONN_SPOT_WEBHDFS="{\"conn_type\": \"webhdfs\", \"host\": \"$SPOT_BIND_HOST\", \"port\": $SPOT_HDFS_HTTP_PORT, \"login\": \"${SPOT_HDFS_USER:-$(id -un)}\"}"
export AIRFLOW_CONN_SPOT_HIVESERVER2="{\"conn_type\": \"hiveserver2\", \"host\": \"$SPOT_BIND_HOST\", \"port\": $SPOT_HIVE_PORT, \"schema\": \"default\", \"login\": \"${SPOT_HIVE_USER:-$(id -un)}\", \"extra\": {\"auth_mechanism\": \"NONE\"}}"
export AIRFLOW_CONN_SPOT_HIVE_CLI="{\"conn_type\": \"hive_cli\", \"host\": \"$SPOT_BIND_HOST\", \"port\": $SPOT_HIVE_PORT, \"schema\": \"default\", \"login\": \"${SPOT_HIVE_USER:-$(id -un)}\", \"extra\": {\"use_beeline\": true, \"auth\": \"none\"}}"
export AIRFLOW_CONN_SPOT_METASTORE="{\"conn_type\": \"hive_metastore\", \"host\": \"$SPOT_BIND_HOST\", \"port\": $SPOT_METASTORE_PORT, \"extra\": {\"auth_mechanism\": \"NOSASL\"}}"
export AIRFLOW_CONN_SPOT_SPARK="{\"conn_type\": \"spark\", \"host\": \"local[2]\", \"extra\": {\"deploy-mode\": \"client\", \"spark-binary\": \"spark-submit\"}}"
