#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine, and nothing twice:
#   - Debian packages: nfdump, tshark, editcap (wireshark-common), Kerberos headers for gssapi,
#     docker-compose (to validate docker-compose.yaml), curl, chromium (the UI browser test), a JDK 17
#     when none is present;
#   - the Python virtualenv (.venv) from requirements*.txt, then the full pyspark wheel again,
#     because the Spark provider's pyspark-client dependency overwrites files of it;
#   - the Kafka, Hadoop and Spark-connector jars, resolved by Maven into .stack/lib/.
# Each step is skipped when its inputs have not changed (stamps in .stack/run/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${SPOT_STACK_DIR:-$ROOT/.stack}"
VENV="${SPOT_VENV:-$ROOT/.venv}"
PYTHON="${SPOT_PYTHON:-python3}"
STAMPS="$STACK/run/setup"
mkdir -p "$STAMPS"

log() { printf '[setup %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# stamp_ok NAME FILE... : true when NAME was done with the same inputs before.
inputs_hash() { cat "$@" | sha256sum | cut -d' ' -f1; }
stamp_ok() { local name="$1"; shift; [ -f "$STAMPS/$name" ] && [ "$(cat "$STAMPS/$name")" = "$(inputs_hash "$@")" ]; }
stamp_set() { local name="$1"; shift; inputs_hash "$@" >"$STAMPS/$name"; }

# ---------------------------------------------------------------- Debian packages
APT_PACKAGES=(nfdump tshark wireshark-common libkrb5-dev docker-compose curl chromium)
apt_install() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ! command -v java >/dev/null 2>&1 && [ ! -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]; then
    missing+=(openjdk-17-jdk-headless)
  fi
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages present"
    return 0
  fi
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  # tshark asks whether non-root users may capture; answer no without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | "${sudo[@]}" debconf-set-selections
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# ---------------------------------------------------------------- Python
python_env() {
  local reqs=("$ROOT/requirements.txt" "$ROOT/requirements-dev.txt")
  if [ -x "$VENV/bin/python" ] && stamp_ok venv "${reqs[@]}" && pyspark_intact; then
    log "Python environment up to date ($VENV)"
    return 0
  fi
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
  log "installing Python requirements (first time: several minutes)"
  "$VENV/bin/pip" install -q --upgrade pip wheel
  "$VENV/bin/pip" install -q -r "$ROOT/requirements.txt" -r "$ROOT/requirements-dev.txt" \
    || die "pip install failed"
  # pyspark-client (pulled in by the Spark provider) replaces pyspark's files with the client's;
  # put the full distribution back over it.
  local pin
  pin="$(grep -E '^pyspark==' "$ROOT/requirements.txt")"
  log "re-installing the full $pin distribution over pyspark-client"
  "$VENV/bin/pip" install -q --force-reinstall --no-deps "$pin" || die "re-installing $pin failed"
  pyspark_intact || die "pyspark is still not the full distribution after re-installing it"
  stamp_set venv "${reqs[@]}"
}

pyspark_intact() {
  "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata, os, sys
import pyspark
home = os.path.dirname(pyspark.__file__)
want = importlib.metadata.version("pyspark")
ok = (pyspark.__version__ == want
      and os.access(os.path.join(home, "bin", "spark-submit"), os.X_OK)
      and os.path.isfile(os.path.join(home, "jars", f"spark-core_2.13-{want}.jar")))
sys.exit(0 if ok else 1)
EOF
}

# ---------------------------------------------------------------- Maven artifacts
maven_jars() {
  local name pom
  for name in kafka hadoop spark; do
    pom="$ROOT/stack/maven/$name/pom.xml"
    if stamp_ok "jars-$name" "$pom" && ls "$STACK/lib/$name"/*.jar >/dev/null 2>&1; then
      log "jars for $name present"
      continue
    fi
    log "resolving $name jars with Maven into $STACK/lib/$name"
    rm -rf "$STACK/lib/$name"
    mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$STACK/lib/$name" || die "Maven could not resolve $pom"
    stamp_set "jars-$name" "$pom"
  done
}

apt_install
python_env
maven_jars
log "setup complete"
