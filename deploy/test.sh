#!/usr/bin/env bash
# The one test command (README, CI): set up, then run every package's tests one package at a
# time (integration tests start real etcd and ctmgr processes), then print one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh || exit 1
rm -f packages/*/.vitest-report.json test/.vitest-report.json
npx turbo run test --concurrency=1 --output-logs=full
status=$?
node deploy/test-summary.mjs packages/*/.vitest-report.json test/.vitest-report.json || status=1
exit $status
