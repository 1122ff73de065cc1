#!/usr/bin/env bash
# The demo: a 3-host lab (hosts are network namespaces on one underlay bridge), a manager on
# its embedded etcd, an agent on every host; an overlay network, one sandbox on h1 and one on
# h3, and a ping across hosts over VXLAN. Leaves the lab up for you to explore (deploy/lab.sh
# ... ; deploy/lab.sh down to remove it); with --once it tears it down before exiting.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh >/dev/null
once=0; [ "${1:-}" = "--once" ] && once=1
L=deploy/lab.sh
say() { printf '\n$ %s\n' "$*"; }
cleanup_on_error() { echo "demo failed; tearing the lab down" >&2; bash $L down >/dev/null 2>&1 || true; }
trap cleanup_on_error ERR
[ "$once" = 1 ] && trap 'bash $L down >/dev/null 2>&1 || true' EXIT

bash $L up 3
for _ in $(seq 100); do
  [ "$(bash $L ctmgr node ls | grep -c ready)" = 3 ] && break; sleep 0.2
done
say ctmgr node ls; bash $L ctmgr node ls
say ctmgr network create -d overlay --subnet 10.10.0.0/24 app; bash $L ctmgr network create -d overlay --subnet 10.10.0.0/24 app
say ctmgr run -d --name web --network app --node h1 -- sleep infinity; bash $L ctmgr run -d --name web --network app --node h1 -- sleep infinity
say ctmgr run -d --name db --network app --node h3 -- sleep infinity; bash $L ctmgr run -d --name db --network app --node h3 -- sleep infinity
say ctmgr ps; bash $L ctmgr ps
for _ in $(seq 100); do bash $L ctagent h1 exec web -- ping -c1 -W1 10.10.0.3 >/dev/null 2>&1 && break; sleep 0.1; done
say "on h1: ctagent exec web -- ping -c3 10.10.0.3   (db, on h3)"; bash $L ctagent h1 exec web -- ping -c3 -W1 10.10.0.3
say "on h1: bridge fdb show (db's MAC -> h3's VTEP, permanent)"; bash $L exec h1 bridge fdb show | grep ' dst '
say ctmgr network inspect --format table app; bash $L ctmgr network inspect --format table app
if [ "$once" = 0 ]; then
  echo
  echo "The lab stays up. Explore: bash deploy/lab.sh ctmgr ps | bash deploy/lab.sh ctagent h3 exec db -- ip addr"
  echo "Remove it:  bash deploy/lab.sh down"
fi
