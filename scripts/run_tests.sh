#!/usr/bin/env bash
# `make test`: start the local stack, run unit, DAG and integration tests against it, and stop the
# stack whatever happens. Exits non-zero on any failure, including "no tests ran" (pytest's 5).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/env.sh
. scripts/env.sh

started_here=0
cleanup() {
  if [ "$started_here" = 1 ] || [ "${CI:-}" = true ]; then
    scripts/stack.sh down || true
  fi
}
trap cleanup EXIT

# Keep a stack the developer started by hand; otherwise start one for the tests and stop it after.
if ! scripts/stack.sh status >/dev/null 2>&1; then
  started_here=1
  if ! scripts/stack.sh up; then
    echo "The local stack did not start; logs are in $SPOT_STACK_DIR/logs" >&2
    for f in "$SPOT_STACK_DIR"/logs/*.log; do
      echo "---- tail of $f" >&2
      tail -n 30 "$f" >&2
    done
    exit 1
  fi
fi

pytest -p no:cacheprovider --durations=25 --junitxml="$SPOT_STACK_DIR/test-results.xml" "$@" tests
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  rc=1
fi
if [ "$rc" -ne 0 ]; then
  echo "Tests failed (exit $rc); service logs are in $SPOT_STACK_DIR/logs" >&2
fi
exit "$rc"
