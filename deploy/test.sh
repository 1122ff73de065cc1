#!/usr/bin/env bash
# The one test command (README, CI): set up, then run every package's tests one package at a
# time (integration tests start real etcd and ctmgr processes), every package even after one
# failed (--continue: a red run must not hide later failures), then every benchmark in smoke
# mode (tiny sizes: a benchmark that no longer runs is a failure), then print one summary line
# over every test file that exists. The last line is always `tests: N passed, N failed, N
# skipped` (CI reads it); the exit status is non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
node deploy/test-summary.mjs --clean 2>/dev/null
if ! bash deploy/setup.sh; then
  echo "setup failed (install or build): no test ran" >&2
  node deploy/test-summary.mjs --runner-status 1 # every test file counted as failed
  exit 1
fi

# dependencies-successful: a package whose build failed has no tests run (its files are then
# counted as failed, by name), and every other package still runs.
npx turbo run test --concurrency=1 --continue=dependencies-successful --output-logs=full
tests=$?

bench=0
npm run --silent --workspace benchmarks bench:smoke || bench=1

node deploy/test-summary.mjs --runner-status "$tests" --smoke-status "$bench"

