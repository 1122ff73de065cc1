#!/usr/bin/env bash
# The demo: a manager on its embedded etcd, an overlay network created and inspected.
# Runs until Ctrl-C (or exits at once with --once), and cleans up after itself either way.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh >/dev/null

once=0; [ "${1:-}" = "--once" ] && once=1
work=$(mktemp -d /tmp/ctnet-demo.XXXXXX)
port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
grpc=$(port); http=$(port); etcdport=$(port)
ctmgr() { node packages/cli/dist/main.js --manager "127.0.0.1:$grpc" "$@"; }

node packages/cli/dist/main.js serve --listen "127.0.0.1:$grpc" --http "127.0.0.1:$http" \
  --data-dir "$work" --embedded-etcd-port "$etcdport" >"$work/ctmgr.log" 2>&1 &
mgr=$!
cleanup() { kill "$mgr" 2>/dev/null || true; wait "$mgr" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

for _ in $(seq 100); do node -e "fetch(\"http://127.0.0.1:$http/healthz\").then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" && break; sleep 0.1; done
echo "== ctmgr serving on 127.0.0.1:$grpc (embedded etcd on 127.0.0.1:$etcdport, log $work/ctmgr.log)"
echo "\$ ctmgr network create -d overlay --subnet 10.10.0.0/24 app"; ctmgr network create -d overlay --subnet 10.10.0.0/24 app
echo "\$ ctmgr network create backend   # subnet and VNI chosen for you"; ctmgr network create backend
echo "\$ ctmgr network ls"; ctmgr network ls
echo "\$ ctmgr network inspect --format table app"; ctmgr network inspect --format table app
if [ "$once" = 1 ]; then exit 0; fi
echo
echo "Try: CTNET_MANAGER=127.0.0.1:$grpc node packages/cli/dist/main.js network --help"
echo "Ctrl-C stops the manager and removes $work."
wait "$mgr"
