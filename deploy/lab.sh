#!/usr/bin/env bash
# The multi-host lab from a shell: hosts are network namespaces on one Linux bridge, the
# manager runs in its own namespace, and an agent runs in every host (once it is built).
# The same lab as test/src/lab/lab.ts, for poking at by hand. Needs root.
#
#   deploy/lab.sh up [N]          N hosts (default 3); prints the prefix, starts ctmgr and agents
#   deploy/lab.sh status          namespaces, processes, ctmgr node ls
#   deploy/lab.sh ctmgr ARGS...   the CLI, run inside the manager's namespace
#   deploy/lab.sh exec NODE CMD...  NODE = h1..hN, m (manager), ul (switch) or a sandbox namespace
#   deploy/lab.sh ctagent hN ARGS...  the agent binary on hN with hN's environment (ps, exec NAME -- CMD)
#   deploy/lab.sh link NODE down|up   pull or plug NODE's cable on the lab switch
#   deploy/lab.sh logs NODE [-f]  the manager's (m) or an agent's (hN) log
#   deploy/lab.sh down            stop what up started, delete every namespace of the lab
#
# Environment for up: LAB_AGENTS=auto|0|1 (auto: if packages/agent/dist/bin/ctagent exists),
# LAB_AGENT_JS (another agent entry point), LAB_NODE_TTL (3s), LAB_NODE_GRACE (10s),
# LAB_RESYNC (5s), LAB_MANAGER_ARGS, LAB_AGENT_ARGS.
# For down: LAB_KEEP=1 keeps the work dir (logs, data dirs). Any command: LAB_STATE_DIR
# (default /tmp/ctnet-lab) records which lab is up, so a second one needs another.
#
# Layout (192.168.X.0/24, X in 200..250 picked from the prefix):
#   <p>-ul  bridge br0, one veth port per node named after it      (the switch)
#   <p>-m   eth0 192.168.X.254, ctmgr serve on 0.0.0.0:4700, /healthz on 127.0.0.1:4701
#   <p>-hN  eth0 192.168.X.N, ctagent run --manager 192.168.X.254:4700 ..., http 127.0.0.1:4702
#   <p>-sN-*  sandboxes the agent on hN creates (CTNET_NETNS_PREFIX=<p>-sN-)
# Nothing touches the root namespace's interfaces, routes or firewall, and no namespace has
# a default route: the lab cannot reach the outside, and the outside reaches it only by
# entering a namespace.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CTMGR_JS=$REPO/packages/cli/dist/bin/ctmgr
AGENT_JS=${LAB_AGENT_JS:-$REPO/packages/agent/dist/bin/ctagent}
STATE_DIR=${LAB_STATE_DIR:-/tmp/ctnet-lab} # records the lab that is up (one lab per state dir)
STATE=$STATE_DIR/current.env

die() { echo "lab.sh: $*" >&2; exit 1; }

# How every lab process enters namespace NS, as test/src/lab/netns-exec.sh does (see there):
# like "ip netns exec" (own mount namespace, /sys of NS), except that /run/netns stays shared
# with the root mount namespace, so sandbox namespaces an agent creates with "ip netns add"
# are visible to (and deletable by) the lab. Each step execs the next: the PID that "&"
# reports is the final command's.
NSRUN_SH='set -e
mount --make-private /
umount -l /sys 2>/dev/null || true
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
exec "$@"'
nsrun_argv() { NSRUN=(nsenter --net="/run/netns/$1" -- unshare --mount --propagation unchanged -- /bin/sh -c "$NSRUN_SH" netns-exec); }
nsrun() {
  nsrun_argv "$1"
  shift
  "${NSRUN[@]}" "$@"
}

load_state() {
  [ -f "$STATE" ] || die "no lab is up (no $STATE); run: deploy/lab.sh up"
  # shellcheck source=/dev/null
  . "$STATE"
  [[ "$LAB_PREFIX" =~ ^ct[0-9a-f]{6}$ ]] || die "$STATE names a bad prefix \"$LAB_PREFIX\"; remove it by hand"
}

save() { printf '%s=%q\n' "$1" "$2" >>"$STATE"; }

# Namespaces of the lab that exist now: sandboxes first, the underlay last.
lab_namespaces() {
  local p=$1 f ns sb=() mid=() ul=()
  for f in /run/netns/"$p"-*; do
    [ -e "$f" ] || continue
    ns=${f##*/}
    case $ns in "$p"-s*) sb+=("$ns") ;; "$p"-ul) ul+=("$ns") ;; *) mid+=("$ns") ;; esac
  done
  printf '%s\n' "${sb[@]}" "${mid[@]}" "${ul[@]}" | sed '/^$/d'
}

# True if PID still runs inside one of the lab's namespaces (guards against PID reuse).
in_lab() {
  local pid=$1 ns
  for ns in $(ip netns identify "$pid" 2>/dev/null); do
    [[ $ns == "$LAB_PREFIX"-* ]] && return 0
  done
  return 1
}

# True while PID exists and is not a zombie.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # the state follows the last ")": the command name may hold spaces
  [ "${stat%% *}" != Z ]
}

do_down() {
  local pid ns deadline entry
  # 1. What up started, by recorded PID, agents first: SIGTERM, then SIGKILL after 5 s.
  local pids=()
  for entry in ${LAB_AGENT_PIDS:-} ${LAB_MANAGER_PID:+m:$LAB_MANAGER_PID}; do
    pid=${entry#*:}
    if in_lab "$pid"; then kill -TERM "$pid" 2>/dev/null && pids+=("$pid"); fi
  done
  deadline=$((SECONDS + 5))
  for pid in "${pids[@]}"; do
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if alive "$pid" && in_lab "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  # 2. Whatever still runs inside the lab's namespaces (the manager's etcd if it was
  #    SIGKILLed, sandbox processes), then the namespaces themselves.
  for ns in $(lab_namespaces "$LAB_PREFIX"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  done
  deadline=$((SECONDS + 3))
  for ns in $(lab_namespaces "$LAB_PREFIX"); do
    while [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && ((SECONDS < deadline)); do sleep 0.1; done
    ip netns del "$ns" || echo "lab.sh: could not delete namespace $ns" >&2
  done
  local left
  left=$(lab_namespaces "$LAB_PREFIX" | tr '\n' ' ')
  if [ "${LAB_KEEP:-0}" = 1 ]; then echo "kept $LAB_WORK"; else rm -rf "$LAB_WORK"; fi
  rm -f "$STATE"
  [ -z "$left" ] || die "namespaces left behind: $left"
  echo "lab $LAB_PREFIX is down"
}

cmd_up() {
  local n=${1:-3}
  [[ "$n" =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 200)) || die "up takes a host count from 1 to 200, not \"$n\""
  [ "$(id -u)" = 0 ] || die "the lab needs root"
  local tool
  for tool in ip nsenter unshare node; do command -v "$tool" >/dev/null || die "$tool is not on PATH"; done
  [ -f "$CTMGR_JS" ] || die "ctmgr is not built ($CTMGR_JS); run: npx turbo run build"
  if [ -f "$STATE" ]; then
    (
      load_state
      [ -z "$(lab_namespaces "$LAB_PREFIX")" ]
    ) || die "lab $(sed -n 's/^LAB_PREFIX=//p' "$STATE") is up; run deploy/lab.sh down first"
    rm -f "$STATE" # stale: its namespaces are gone
  fi
  local agents=${LAB_AGENTS:-auto}
  if [ "$agents" = auto ]; then if [ -f "$AGENT_JS" ]; then agents=1; else agents=0; fi; fi
  [ "$agents" = 0 ] || [ -f "$AGENT_JS" ] || die "LAB_AGENTS=1 but the agent is not built ($AGENT_JS)"

  local hex
  hex=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
  LAB_PREFIX=ct$hex
  [ -z "$(lab_namespaces "$LAB_PREFIX")" ] || die "namespaces with prefix $LAB_PREFIX exist already; run up again"
  local octet=$((200 + 16#${hex:0:2} % 51))
  LAB_WORK=$STATE_DIR/$LAB_PREFIX
  LAB_AGENT_PIDS=
  LAB_MANAGER_PID=
  mkdir -p "$LAB_WORK"
  : >"$STATE"
  save LAB_PREFIX "$LAB_PREFIX"
  save LAB_OCTET "$octet"
  save LAB_HOSTS "$n"
  save LAB_WORK "$LAB_WORK"

  # From here on, a failure or Ctrl-C takes the half-built lab down again.
  UP_OK=0
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'if [ "$UP_OK" = 0 ]; then echo "lab.sh: up failed; tearing the lab down" >&2; do_down || true; fi' EXIT

  local p=$LAB_PREFIX ul=$LAB_PREFIX-ul node
  ip netns add "$ul"
  ip -n "$ul" link set dev lo up
  ip -n "$ul" link add name br0 type bridge stp_state 0
  ip -n "$ul" link set dev br0 up
  attach() { # NAME LAST-OCTET; keywords spelled out: ip reads a bare "m" as "mtu"
    local name=$1 ns=$p-$1
    ip netns add "$ns"
    ip -n "$ns" link set dev lo up
    ip -n "$ul" link add name "$name" type veth peer name eth0 netns "$ns"
    ip -n "$ul" link set dev "$name" master br0 up
    ip -n "$ns" addr add "192.168.$octet.$2/24" dev eth0
    ip -n "$ns" link set dev eth0 up
  }
  attach m 254
  for ((i = 1; i <= n; i++)); do
    attach "h$i" "$i"
    mkdir -p "$LAB_WORK/h$i"
  done

  local node_bin
  node_bin=$(command -v node)
  mkdir -p "$LAB_WORK/manager"
  # setsid: its own session, so neither the terminal's Ctrl-C nor its hangup reaches it.
  nsrun_argv "$p-m"
  # shellcheck disable=SC2086 # LAB_MANAGER_ARGS is a list of words
  setsid "${NSRUN[@]}" "$node_bin" "$CTMGR_JS" serve \
    --listen 0.0.0.0:4700 --http 127.0.0.1:4701 --data-dir "$LAB_WORK/manager" \
    --node-ttl "${LAB_NODE_TTL:-3s}" --node-grace "${LAB_NODE_GRACE:-10s}" ${LAB_MANAGER_ARGS:-} \
    </dev/null >>"$LAB_WORK/manager.log" 2>&1 &
  LAB_MANAGER_PID=$!
  save LAB_MANAGER_PID "$LAB_MANAGER_PID"
  local poll='const end = Date.now() + 30000; for (;;) { try { if ((await fetch("http://127.0.0.1:4701/healthz")).ok) process.exit(0); } catch {} if (Date.now() > end) process.exit(1); await new Promise((r) => setTimeout(r, 100)); }'
  nsrun "$p-m" "$node_bin" --input-type=module -e "$poll" &
  local poller=$!
  while alive "$poller"; do
    if ! alive "$LAB_MANAGER_PID"; then
      kill -KILL "$poller" 2>/dev/null || true
      tail -n 20 "$LAB_WORK/manager.log" >&2
      die "ctmgr serve exited before answering /healthz (log: $LAB_WORK/manager.log)"
    fi
    sleep 0.1
  done
  wait "$poller" || {
    tail -n 20 "$LAB_WORK/manager.log" >&2
    die "ctmgr serve did not answer /healthz within 30 s"
  }

  if [ "$agents" = 1 ]; then
    # Hosts join as an operator's would: with the worker token, passed in the environment.
    local token
    token=$(CTNET_MANAGER=127.0.0.1:4700 CTNET_TLS_DIR="$LAB_WORK/manager/admin" nsrun "$p-m" "$node_bin" "$CTMGR_JS" join-token -q worker) ||
      die "ctmgr join-token failed (log: $LAB_WORK/manager.log)"
    for ((i = 1; i <= n; i++)); do
      node=h$i
      nsrun_argv "$p-$node"
      # shellcheck disable=SC2086
      CTNET_JOIN_TOKEN=$token CTNET_NETNS_PREFIX=$p-s$i- setsid "${NSRUN[@]}" \
        "$node_bin" "$AGENT_JS" run --manager "192.168.$octet.254:4700" --advertise-addr "192.168.$octet.$i" \
        --node-name "$node" --data-dir "$LAB_WORK/$node" --cni-socket "$LAB_WORK/$node/cni.sock" --docker-plugin-dir none --http 127.0.0.1:4702 \
        --resync-interval "${LAB_RESYNC:-5s}" ${LAB_AGENT_ARGS:-} \
        </dev/null >>"$LAB_WORK/$node.log" 2>&1 &
      LAB_AGENT_PIDS="$LAB_AGENT_PIDS $node:$!"
    done
    save LAB_AGENT_PIDS "$LAB_AGENT_PIDS"
  fi
  UP_OK=1
  trap - EXIT INT TERM

  echo "lab $p is up: $n hosts on 192.168.$octet.0/24, manager 192.168.$octet.254:4700"
  echo "  agents: $([ "$agents" = 1 ] && echo "started (CTNET_NETNS_PREFIX=$p-sN-)" || echo "not started (not built, or LAB_AGENTS=0)")"
  echo "  logs and data: $LAB_WORK"
  echo "  try: deploy/lab.sh ctmgr node ls; deploy/lab.sh exec h1 ping -c1 192.168.$octet.2; deploy/lab.sh down"
  echo "$p"
}

cmd_status() {
  load_state
  echo "lab $LAB_PREFIX: $LAB_HOSTS hosts on 192.168.$LAB_OCTET.0/24, work dir $LAB_WORK"
  echo "namespaces: $(lab_namespaces "$LAB_PREFIX" | tr '\n' ' ')"
  local entry pid
  for entry in m:$LAB_MANAGER_PID ${LAB_AGENT_PIDS:-}; do
    pid=${entry#*:}
    if alive "$pid" && in_lab "$pid"; then echo "  ${entry%%:*}  pid $pid  running"; else echo "  ${entry%%:*}  pid $pid  not running"; fi
  done
  if alive "$LAB_MANAGER_PID"; then cmd_ctmgr node ls || true; fi
}

cmd_ctmgr() {
  load_state
  CTNET_MANAGER=127.0.0.1:4700 CTNET_TLS_DIR="$LAB_WORK/manager/admin" nsrun "$LAB_PREFIX-m" "$(command -v node)" "$CTMGR_JS" "$@"
}

ns_of() { # NODE -> namespace name; only the lab's
  case $1 in
    m | ul | h[0-9]*) echo "$LAB_PREFIX-$1" ;;
    "$LAB_PREFIX"-*) echo "$1" ;;
    *) die "unknown node \"$1\": use h1..h$LAB_HOSTS, m, ul or a namespace starting with $LAB_PREFIX-" ;;
  esac
}

# On a host, commands see what its agent sees: CTNET_NETNS_PREFIX and CTNET_DATA_DIR.
cmd_exec() {
  load_state
  (($# >= 2)) || die "usage: deploy/lab.sh exec NODE CMD [ARG...]"
  local ns
  ns=$(ns_of "$1")
  [ -e "/run/netns/$ns" ] || die "namespace $ns does not exist"
  if [[ $1 =~ ^h([0-9]+)$ ]]; then
    export CTNET_NETNS_PREFIX=$LAB_PREFIX-s${BASH_REMATCH[1]}- CTNET_DATA_DIR=$LAB_WORK/$1
  fi
  shift
  nsrun "$ns" "$@"
}

cmd_ctagent() {
  (($# >= 1)) && [[ $1 =~ ^h[0-9]+$ ]] || die "usage: deploy/lab.sh ctagent hN ARGS..."
  local host=$1
  shift
  [ -f "$AGENT_JS" ] || die "the agent is not built ($AGENT_JS)"
  cmd_exec "$host" "$(command -v node)" "$AGENT_JS" "$@"
}

cmd_link() {
  load_state
  (($# == 2)) && [[ $1 == h[0-9]* || $1 == m ]] && [[ $2 == up || $2 == down ]] || die "usage: deploy/lab.sh link NODE down|up"
  ip -n "$LAB_PREFIX-ul" link set dev "$1" "$2"
}

cmd_logs() {
  load_state
  local name=${1:-m} file
  if [ "$name" = m ]; then file=$LAB_WORK/manager.log; else file=$LAB_WORK/$name.log; fi
  [ -f "$file" ] || die "no log $file"
  if [ "${2:-}" = -f ]; then tail -f "$file"; else cat "$file"; fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  up) cmd_up "$@" ;;
  down)
    load_state
    do_down
    ;;
  status) cmd_status ;;
  ctmgr) cmd_ctmgr "$@" ;;
  exec) cmd_exec "$@" ;;
  ctagent) cmd_ctagent "$@" ;;
  link) cmd_link "$@" ;;
  logs) cmd_logs "$@" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    [ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = -h ] || [ "$cmd" = --help ] || exit 2
    ;;
esac
