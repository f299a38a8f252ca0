#!/usr/bin/env bash
# The local single-machine stack: Kafka (KRaft), HDFS (NameNode + DataNode, WebHDFS), a Hive metastore,
# the Spark Thrift Server (HiveServer2 protocol) and Airflow (api-server, scheduler, dag-processor,
# triggerer). Real programs on loopback, no Docker. Data, logs and pids live under $SPOT_STACK_DIR.
#
#   scripts/stack.sh up|down|status|restart [service...]
#
# Services start in dependency order and `up` waits until each one answers; `up` and `down` are
# idempotent. Heaps are small on purpose: everything must fit in 2 cores and 24 GB next to the tests.
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

STACK="$SPOT_STACK_DIR"
RUN="$STACK/run"
LOGS="$STACK/logs"
DATA="$STACK/data"
CONF="$STACK/conf"
LIB="$STACK/lib"
SERVICES=(kafka namenode datanode metastore hiveserver2 airflow-api-server airflow-scheduler airflow-dag-processor airflow-triggerer)
START_TIMEOUT="${SPOT_STACK_START_TIMEOUT:-180}"

log() { printf '[stack %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$SPOT_BIND_HOST/$1") 2>/dev/null; }

pid_of() {
  local f="$RUN/$1.pid"
  [ -f "$f" ] || return 1
  local pid
  pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# Start a command as its own process group, output to logs/<name>.log.
launch() {
  local name="$1"; shift
  if pid_of "$name" >/dev/null; then
    log "$name already running (pid $(pid_of "$name"))"
    return 0
  fi
  mkdir -p "$RUN" "$LOGS"
  log "starting $name"
  setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_until() {
  local name="$1" check="$2" deadline=$((SECONDS + START_TIMEOUT))
  until $check; do
    if ! pid_of "$name" >/dev/null; then
      tail -n 40 "$LOGS/$name.log" >&2 || true
      die "$name exited during start-up; see $LOGS/$name.log"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 40 "$LOGS/$name.log" >&2 || true
      die "$name did not become healthy within ${START_TIMEOUT}s; see $LOGS/$name.log"
    fi
    sleep 1
  done
  log "$name is up"
}

stop_service() {
  local name="$1" pid
  pid="$(pid_of "$name")" || { rm -f "$RUN/$name.pid"; return 0; }
  log "stopping $name (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop in 30s, killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
}

# Hadoop 3.4's web layer (Jersey 1 + Guice) reflects into java.base; Java 17 needs these opens.
JAVA17_OPENS=(--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED)

java_bin() { echo "${JAVA_HOME:+$JAVA_HOME/bin/}java"; }

require_lib() {
  [ -d "$LIB/$1" ] && ls "$LIB/$1"/*.jar >/dev/null 2>&1 || die "jars for $1 missing in $LIB/$1: run 'make setup' first"
}

# ---------------------------------------------------------------- configuration files
xml_conf() {  # xml_conf FILE name value [name value ...]
  local file="$1"; shift
  {
    echo '<?xml version="1.0"?>'
    echo '<!-- Written by scripts/stack.sh on every start; edit the script, not this file. -->'
    echo '<configuration>'
    while [ $# -gt 0 ]; do
      printf '  <property><name>%s</name><value>%s</value></property>\n' "$1" "$2"
      shift 2
    done
    echo '</configuration>'
  } >"$file"
}

write_configs() {
  mkdir -p "$CONF/hadoop" "$CONF/hive" "$CONF/kafka" "$CONF/spark" "$DATA" "$RUN" "$LOGS"
  local fs="hdfs://$SPOT_BIND_HOST:$SPOT_HDFS_RPC_PORT"
  xml_conf "$CONF/hadoop/core-site.xml" \
    fs.defaultFS "$fs" \
    hadoop.tmp.dir "$DATA/hadoop-tmp" \
    hadoop.proxyuser.root.hosts '*' \
    hadoop.proxyuser.root.groups '*'
  xml_conf "$CONF/hadoop/hdfs-site.xml" \
    dfs.replication 1 \
    dfs.namenode.name.dir "file://$DATA/hdfs/name" \
    dfs.datanode.data.dir "file://$DATA/hdfs/data" \
    dfs.namenode.rpc-address "$SPOT_BIND_HOST:$SPOT_HDFS_RPC_PORT" \
    dfs.namenode.rpc-bind-host "$SPOT_BIND_HOST" \
    dfs.namenode.http-address "$SPOT_BIND_HOST:$SPOT_HDFS_HTTP_PORT" \
    dfs.namenode.http-bind-host "$SPOT_BIND_HOST" \
    dfs.namenode.servicerpc-bind-host "$SPOT_BIND_HOST" \
    dfs.datanode.address "$SPOT_BIND_HOST:$SPOT_DATANODE_PORT" \
    dfs.datanode.http.address "$SPOT_BIND_HOST:$SPOT_DATANODE_HTTP_PORT" \
    dfs.datanode.ipc.address "$SPOT_BIND_HOST:$SPOT_DATANODE_IPC_PORT" \
    dfs.datanode.hostname "$SPOT_BIND_HOST" \
    dfs.namenode.safemode.extension 0 \
    dfs.namenode.safemode.min.datanodes 1 \
    dfs.permissions.enabled false \
    dfs.webhdfs.enabled true \
    dfs.namenode.datanode.registration.ip-hostname-check false
  cat >"$CONF/hadoop/log4j.properties" <<EOF
log4j.rootLogger=INFO, console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.hdfs.StateChange=WARN
log4j.logger.BlockStateChange=WARN
EOF
  # Hive metastore (Derby) and the Thrift Server share this hive-site.xml.
  xml_conf "$CONF/hive/hive-site.xml" \
    javax.jdo.option.ConnectionURL "jdbc:derby:;databaseName=$DATA/metastore_db;create=true" \
    javax.jdo.option.ConnectionDriverName org.apache.derby.jdbc.EmbeddedDriver \
    datanucleus.schema.autoCreateAll true \
    hive.metastore.schema.verification false \
    datanucleus.connectionPoolingType HikariCP \
    hive.metastore.warehouse.dir "$fs/user/hive/warehouse" \
    hive.metastore.uris "thrift://$SPOT_BIND_HOST:$SPOT_METASTORE_PORT" \
    hive.async.log.enabled false \
    hive.server2.thrift.port "$SPOT_HIVE_PORT" \
    hive.server2.thrift.bind.host "$SPOT_BIND_HOST" \
    hive.server2.authentication NONE \
    hive.server2.enable.doAs false
  cp "$CONF/hadoop/core-site.xml" "$CONF/hadoop/hdfs-site.xml" "$CONF/hive/"
  cp "$CONF/hive/hive-site.xml" "$CONF/hadoop/log4j.properties" "$CONF/hadoop/" 2>/dev/null || true
  if [ ! -s "$RUN/kafka-sasl-password" ]; then
    (umask 077 && "$SPOT_VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(16))' >"$RUN/kafka-sasl-password") \
      || die "could not make the Kafka SASL password"
  fi
  local sasl_password; sasl_password="$(cat "$RUN/kafka-sasl-password")"
  (umask 077 && cat >"$CONF/kafka/server.properties" <<EOF
# Written by scripts/stack.sh on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$SPOT_BIND_HOST:$SPOT_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$SPOT_BIND_HOST:$SPOT_KAFKA_PORT,SASL_PLAINTEXT://$SPOT_BIND_HOST:$SPOT_KAFKA_SASL_PORT,CONTROLLER://$SPOT_BIND_HOST:$SPOT_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$SPOT_BIND_HOST:$SPOT_KAFKA_PORT,SASL_PLAINTEXT://$SPOT_BIND_HOST:$SPOT_KAFKA_SASL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_spot="$sasl_password";
log.dirs=$DATA/kafka
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
message.max.bytes=10485760
EOF
  ) || die "could not write $CONF/kafka/server.properties"
  chmod 600 "$CONF/kafka/server.properties"  # it holds the SASL password (an existing file keeps its mode)
  cat >"$CONF/kafka/log4j2.yaml" <<EOF
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: WARN
EOF
  cat >"$CONF/spark/spark-defaults.conf" <<EOF
spark.master                       local[2]
spark.sql.catalogImplementation    hive
spark.hadoop.hive.metastore.uris   thrift://$SPOT_BIND_HOST:$SPOT_METASTORE_PORT
spark.hadoop.fs.defaultFS          $fs
spark.sql.warehouse.dir            $fs/user/hive/warehouse
spark.sql.session.timeZone         UTC
spark.driver.extraJavaOptions      -Duser.timezone=UTC
spark.executor.extraJavaOptions    -Duser.timezone=UTC
spark.ui.enabled                   false
spark.driver.host                  $SPOT_BIND_HOST
spark.driver.bindAddress           $SPOT_BIND_HOST
spark.sql.shuffle.partitions       4
spark.jars.ivy                     $STACK/ivy
EOF
  cp "$CONF/hive/hive-site.xml" "$CONF/hadoop/core-site.xml" "$CONF/hadoop/hdfs-site.xml" "$CONF/spark/"
}

# ---------------------------------------------------------------- Kafka
kafka_cp() { echo "$LIB/kafka/*"; }
kafka_healthy() { port_open "$SPOT_KAFKA_PORT"; }
start_kafka() {
  require_lib kafka
  local java; java="$(java_bin)"
  if [ ! -f "$DATA/kafka/meta.properties" ]; then
    log "formatting Kafka storage (KRaft)"
    mkdir -p "$DATA/kafka"
    local cluster_id
    cluster_id="$("$java" -cp "$(kafka_cp)" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    "$java" -Dlog4j2.configurationFile="$CONF/kafka/log4j2.yaml" -cp "$(kafka_cp)" kafka.tools.StorageTool \
      format -t "$cluster_id" -c "$CONF/kafka/server.properties" >>"$LOGS/kafka.log" 2>&1 \
      || die "formatting Kafka storage failed; see $LOGS/kafka.log"
  fi
  launch kafka "$java" -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CONF/kafka/log4j2.yaml" -cp "$(kafka_cp)" kafka.Kafka "$CONF/kafka/server.properties"
  wait_until kafka kafka_healthy
}

# ---------------------------------------------------------------- HDFS
# hadoop_cmd HEAP CLASS [ARGS...] sets CMD to the java command line of a Hadoop daemon or tool.
hadoop_cmd() {
  local heap="$1" cls="$2"; shift 2
  CMD=("$(java_bin)" -Xms128m "-Xmx$heap" -Djava.net.preferIPv4Stack=true -Duser.timezone=UTC "${JAVA17_OPENS[@]}"
    "-Dhadoop.log.dir=$LOGS" "-Dlog4j.configuration=file:$CONF/hadoop/log4j.properties"
    -cp "$CONF/hadoop:$LIB/hadoop/*" "$cls" "$@")
}
namenode_healthy() { curl -fsS "http://$SPOT_BIND_HOST:$SPOT_HDFS_HTTP_PORT/webhdfs/v1/?op=GETFILESTATUS" >/dev/null 2>&1; }
datanode_healthy() {
  local out
  out="$(curl -fsS "http://$SPOT_BIND_HOST:$SPOT_HDFS_HTTP_PORT/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState" 2>/dev/null)" || return 1
  grep -Eq '"NumLiveDataNodes" *: *[1-9]' <<<"$out" || return 1
  out="$(curl -fsS "http://$SPOT_BIND_HOST:$SPOT_HDFS_HTTP_PORT/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo" 2>/dev/null)" || return 1
  grep -Eq '"Safemode" *: *""' <<<"$out"
}
start_namenode() {
  require_lib hadoop
  if [ ! -d "$DATA/hdfs/name/current" ]; then
    log "formatting the HDFS NameNode"
    mkdir -p "$DATA/hdfs/name"
    hadoop_cmd 512m org.apache.hadoop.hdfs.server.namenode.NameNode -format -nonInteractive -force
    "${CMD[@]}" >>"$LOGS/namenode.log" 2>&1 \
      || die "formatting HDFS failed; see $LOGS/namenode.log"
  fi
  hadoop_cmd 768m org.apache.hadoop.hdfs.server.namenode.NameNode
  launch namenode "${CMD[@]}"
  wait_until namenode namenode_healthy
}
start_datanode() {
  mkdir -p "$DATA/hdfs/data"
  hadoop_cmd 512m org.apache.hadoop.hdfs.server.datanode.DataNode
  launch datanode "${CMD[@]}"
  wait_until datanode datanode_healthy
}
hdfs_mkdirs() {
  local d
  for d in "$@"; do
    curl -fsS -X PUT "http://$SPOT_BIND_HOST:$SPOT_HDFS_HTTP_PORT/webhdfs/v1$d?op=MKDIRS&user.name=$(id -un)" >/dev/null \
      || die "could not create HDFS folder $d"
  done
}
layout() { PYTHONPATH="$SPOT_ROOT/plugins" "$SPOT_VENV/bin/python" -m spot_operators.layout "$@"; }
# The config's topics (the broker does not auto-create them), as spot_setup's create_topics would.
prepare_kafka() {
  local out
  out="$(PYTHONPATH="$SPOT_ROOT/plugins" "$SPOT_VENV/bin/python" -m spot_operators.provisioning topics \
    --bootstrap "$SPOT_BIND_HOST:$SPOT_KAFKA_PORT" 2>&1)" || die "could not create the Kafka topics: $out"
  log "Kafka topics: $out"
}
prepare_hdfs() {
  hdfs_mkdirs /user/hive/warehouse /tmp/hive
  curl -fsS -X PUT "http://$SPOT_BIND_HOST:$SPOT_HDFS_HTTP_PORT/webhdfs/v1/tmp?op=SETPERMISSION&permission=1777&user.name=$(id -un)" >/dev/null \
    || die "could not open /tmp in HDFS"
  # The hdfs_app_path folders of the configured pipelines (binary, stage, hive, checkpoints per type)
  # and their local collector and staging folders. A bad config stops the stack here, loudly.
  local dirs
  dirs="$(layout hdfs-dirs)" || die "cannot read the ingest config (see the message above)"
  # shellcheck disable=SC2086
  hdfs_mkdirs $dirs
  dirs="$(layout local-dirs)" || die "cannot read the ingest config (see the message above)"
  while IFS= read -r d; do mkdir -p "$d"; done <<<"$dirs"
  log "HDFS and collector folders ready"
}

# ---------------------------------------------------------------- Hive metastore + Spark Thrift Server
metastore_healthy() { port_open "$SPOT_METASTORE_PORT"; }
start_metastore() {
  [ -n "${SPARK_HOME:-}" ] || die "pyspark is not installed in $SPOT_VENV: run 'make setup' first"
  mkdir -p "$DATA"
  # Derby writes derby.log into the working directory.
  launch metastore bash -c "cd '$DATA' && exec '$(java_bin)' -Xms128m -Xmx768m -Duser.timezone=UTC \
    -Dderby.system.home='$DATA' -cp '$CONF/hive:$SPARK_HOME/jars/*' \
    org.apache.hadoop.hive.metastore.HiveMetaStore -p '$SPOT_METASTORE_PORT'"
  wait_until metastore metastore_healthy
}
hiveserver2_healthy() { port_open "$SPOT_HIVE_PORT"; }
start_hiveserver2() {
  launch hiveserver2 env SPARK_NO_DAEMONIZE=1 SPARK_LOG_DIR="$LOGS" SPARK_PID_DIR="$RUN" \
    "$SPARK_HOME/bin/spark-submit" --master 'local[2]' --driver-memory 1g \
    --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 \
    --name spot-thriftserver \
    --conf "spark.hadoop.hive.metastore.uris=thrift://$SPOT_BIND_HOST:$SPOT_METASTORE_PORT" \
    --conf "spark.sql.warehouse.dir=hdfs://$SPOT_BIND_HOST:$SPOT_HDFS_RPC_PORT/user/hive/warehouse" \
    --hiveconf "hive.server2.thrift.port=$SPOT_HIVE_PORT" \
    --hiveconf "hive.server2.thrift.bind.host=$SPOT_BIND_HOST" \
    spark-internal
  wait_until hiveserver2 hiveserver2_healthy
}

# ---------------------------------------------------------------- Airflow
airflow_healthy() {
  curl -fsS "http://$SPOT_BIND_HOST:$SPOT_AIRFLOW_PORT/api/v2/monitor/health" >/dev/null 2>&1
}
# The api-server's health document reports each Airflow component's heartbeat.
airflow_component_healthy() {
  local doc
  doc="$(curl -fsS "http://$SPOT_BIND_HOST:$SPOT_AIRFLOW_PORT/api/v2/monitor/health" 2>/dev/null)" || return 1
  "$SPOT_VENV/bin/python" -c 'import json, sys; sys.exit(json.loads(sys.argv[1])[sys.argv[2]]["status"] != "healthy")' "$doc" "$1" 2>/dev/null
}
scheduler_healthy() { airflow_component_healthy scheduler; }
triggerer_healthy() { airflow_component_healthy triggerer; }
dag_processor_healthy() { airflow_component_healthy dag_processor; }
prepare_airflow() {
  mkdir -p "$AIRFLOW_HOME" "$RUN"
  if [ ! -f "$RUN/airflow-secret" ]; then
    "$SPOT_VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$RUN/airflow-secret"
    chmod 600 "$RUN/airflow-secret"
  fi
  AIRFLOW__API_AUTH__JWT_SECRET="$(cat "$RUN/airflow-secret")"
  export AIRFLOW__API_AUTH__JWT_SECRET
  # A password per UI user, made once (the simple auth manager reads the file and keeps them).
  "$SPOT_VENV/bin/python" - "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS" <<'PY' \
    || die "could not write the UI passwords file"
import json, os, secrets, sys
path, users = sys.argv[1], [u.split(":")[0] for u in sys.argv[2].split(",") if u.strip()]
known = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
missing = [u for u in users if u not in known]
if missing:
    known.update({u: secrets.token_urlsafe(12) for u in missing})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(known, handle)
PY
  log "migrating the Airflow metadata database"
  "$SPOT_VENV/bin/airflow" db migrate >>"$LOGS/airflow-db.log" 2>&1 || die "airflow db migrate failed; see $LOGS/airflow-db.log"
}
start_airflow() {
  prepare_airflow
  launch airflow-api-server "$SPOT_VENV/bin/airflow" api-server --host "$SPOT_BIND_HOST" --port "$SPOT_AIRFLOW_PORT" --workers 1
  wait_until airflow-api-server airflow_healthy
  launch airflow-scheduler "$SPOT_VENV/bin/airflow" scheduler
  launch airflow-dag-processor "$SPOT_VENV/bin/airflow" dag-processor
  launch airflow-triggerer "$SPOT_VENV/bin/airflow" triggerer
  wait_until airflow-scheduler scheduler_healthy
  wait_until airflow-dag-processor dag_processor_healthy
  wait_until airflow-triggerer triggerer_healthy
}

# ---------------------------------------------------------------- commands
up() {
  write_configs
  pid_of kafka >/dev/null && kafka_healthy || start_kafka
  prepare_kafka
  pid_of namenode >/dev/null && namenode_healthy || start_namenode
  pid_of datanode >/dev/null && datanode_healthy || start_datanode
  prepare_hdfs
  pid_of metastore >/dev/null && metastore_healthy || start_metastore
  pid_of hiveserver2 >/dev/null && hiveserver2_healthy || start_hiveserver2
  if [ "${SPOT_STACK_AIRFLOW:-1}" = "1" ]; then
    start_airflow
  fi
  status
}

down() {
  local i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    stop_service "${SERVICES[$i]}"
  done
}

status() {
  local fail=0 name port check pid state
  printf '%-22s %-8s %-7s %s\n' SERVICE PID PORT STATE
  while read -r name port check; do
    pid="$(pid_of "$name" || echo -)"
    if [ "$pid" = "-" ]; then state=stopped; fail=1
    elif $check; then state=healthy
    else state=unhealthy; fail=1
    fi
    printf '%-22s %-8s %-7s %s\n' "$name" "$pid" "$port" "$state"
  done <<EOF
kafka $SPOT_KAFKA_PORT kafka_healthy
namenode $SPOT_HDFS_HTTP_PORT namenode_healthy
datanode $SPOT_DATANODE_PORT datanode_healthy
metastore $SPOT_METASTORE_PORT metastore_healthy
hiveserver2 $SPOT_HIVE_PORT hiveserver2_healthy
airflow-api-server $SPOT_AIRFLOW_PORT airflow_healthy
airflow-scheduler - scheduler_healthy
airflow-dag-processor - dag_processor_healthy
airflow-triggerer - triggerer_healthy
EOF
  return $fail
}

[ "${SPOT_STACK_SOURCE_ONLY:-0}" = 1 ] && return 0
cmd="${1:-status}"
case "$cmd" in
  up) up ;;
  down) down ;;
  status) status ;;
  restart) down; up ;;
  *) echo "usage: $0 up|down|status|restart" >&2; exit 2 ;;
esac
