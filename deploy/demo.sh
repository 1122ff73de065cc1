#!/usr/bin/env bash
# The demo: a 3-host lab (hosts are network namespaces on one underlay bridge), a manager on
# its embedded etcd, an agent on every host. A service with replicas on h1 and h2 is found by
# name from a container on h3 (dig), and reached through its virtual IP; `ctmgr node diag`
# shows what h3 holds for it. Leaves the lab up to explore (deploy/lab.sh down removes it);
# with --once it tears it down before exiting.
set -euo pipefail
cd "$(dirname "$0")/.."
# CTNET_DEMO_SKIP_SETUP=1: already installed and built (the test that runs this demo).
[ "${CTNET_DEMO_SKIP_SETUP:-}" = 1 ] || bash deploy/setup.sh >/dev/null
once=0; [ "${1:-}" = "--once" ] && once=1
L=deploy/lab.sh
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
step() { say "$*"; bash $L "$@"; }
cleanup_on_error() { echo "demo failed; tearing the lab down" >&2; bash $L down >/dev/null 2>&1 || true; }
trap cleanup_on_error ERR
[ "$once" = 1 ] && trap 'bash $L down >/dev/null 2>&1 || true' EXIT

bash $L up 3
for _ in $(seq 150); do
  [ "$(bash $L ctmgr node ls | grep -c ready)" = 3 ] && break; sleep 0.2
done
step ctmgr node ls
step ctmgr network create -d overlay --subnet 10.10.0.0/24 app

# A service whose tasks answer with their own hostname, so each answer shows which replica
# the VIP picked. `service create` waits and shows its progress, as `docker service create`.
step ctmgr service create --name web --network app --replicas 3 --constraint 'node.name!=h3' -- busybox nc -ll -p 80 -e hostname
step ctmgr service ps web
step ctmgr run -d --name client --network app --node h3 -- sleep infinity
for _ in $(seq 100); do bash $L ctagent h3 exec client -- dig +short +time=1 +tries=1 web 2>/dev/null | grep -q . && break; sleep 0.1; done

say "on h3, in client: dig web           (the service's virtual IP, from the embedded DNS)"
bash $L ctagent h3 exec client -- dig +noall +answer web
say "on h3, in client: dig tasks.web     (every running task, across hosts)"
bash $L ctagent h3 exec client -- dig +noall +answer tasks.web
say "on h3, in client: nc web 80, three times   (the VIP balances over the tasks on h1 and h2)"
for _ in 1 2 3; do bash $L ctagent h3 exec client -- busybox nc -w 2 web 80; done
say "on h3: bridge fdb show   (each task's MAC -> its host's VTEP, permanent: no flooding, no learning)"
bash $L exec h3 bridge fdb show | grep ' dst ' || true
step ctmgr node diag h3

if [ "$once" = 0 ]; then
  cat <<'TXT'

The lab stays up. Try next:
  bash deploy/lab.sh ctmgr service scale web=5                    # watch new tasks converge
  bash deploy/lab.sh ctagent h3 exec client -- dig +short tasks.web
  bash deploy/lab.sh exec h3 bridge fdb del <MAC> dev <ctvx-…> dst <VTEP> self   # break h3 …
  bash deploy/lab.sh ctmgr node diag h3                           # … see it named, then repaired
  bash deploy/lab.sh ctmgr service rm web                         # names gone from every host
  bash deploy/lab.sh logs                                         # the manager's and agents' logs
Remove it:  bash deploy/lab.sh down
TXT
fi
