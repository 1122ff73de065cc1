#!/usr/bin/env bash
# Installs ctnet's manager or agent on this host as a systemd service, or stages it into a
# directory (--root, for an image), and takes it away again (--uninstall).
#
#   install.sh manager|agent [--manager ADDR[,ADDR...]] [--join-token TOKEN] [--advertise-addr IP]
#                            [--from DIR] [--root DIR] [--no-start]
#   install.sh manager|agent --uninstall [--purge] [--root DIR]
#
# Idempotent: a second run changes only what differs (and restarts a running service when its
# files changed). Every file and directory it creates is listed in
# ROOT/var/lib/ctnet/install-manifest, and --uninstall removes exactly the role's files and
# then the listed directories that are empty (shared by both roles: a host may run both);
# what was there before is updated but never listed, so it stays. The data (node
# certificate, etcd) stays too, unless --purge.
set -euo pipefail
umask 077 # temporary files; every installed file gets its mode explicitly

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")") # through the .deb's /usr/sbin/ctnet-install link
# What a unit's `#!/usr/bin/env node` sees: systemd's default PATH, not the caller's.
SYSTEMD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
VXLAN_PORT=4789 # the cluster default (ctmgr serve --vxlan-port)

die() { echo "install.sh: $*" >&2; exit 1; }
note() { echo "install.sh: $*"; }
usage() {
  cat <<'EOF'
Usage: install.sh manager|agent [options]

  --manager ADDR[,ADDR...]  agent: the managers' gRPC addresses (HOST[:4700]) [CTNET_MANAGER]
  --join-token TOKEN        agent: joins the cluster ("ctmgr join-token worker" on a manager);
                            needed on the first install only [CTNET_JOIN_TOKEN]
  --advertise-addr IP       agent: this host's underlay (VTEP) address [CTNET_ADVERTISE_ADDR]
  --from DIR                take ctmgr, ctagent (and the CNI plugin ctnet) from DIR, not from
                            the build tree (packages/*/dist) or this script's bin/
  --root DIR                install into DIR instead of / (units enabled there, nothing started)
  --no-start                enable the service but do not start it
  --uninstall               remove what this script installed (stops the service first)
  --purge                   with --uninstall: delete the data directory too
  -h, --help                this help

Settings go to /etc/ctnet/ctmgr.env or /etc/ctnet/ctagent.env (0600): the keys given here are
updated, the others kept. Any CTNET_* of `ctmgr serve --help` / `ctagent --help` may be added.
EOF
}

# ---- arguments ---------------------------------------------------------------------------
role='' manager='' token='' advertise='' from='' root=/ uninstall=0 purge=0 start=1
while [ $# -gt 0 ]; do
  case $1 in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac # --opt=value as --opt value
  case $1 in
    manager | agent)
      [ -z "$role" ] || die "two roles given ($role, $1); install one at a time: manager or agent"
      role=$1 && shift ;;
    --manager | --join-token | --advertise-addr | --from | --root)
      [ $# -ge 2 ] && [ -n "$2" ] && [[ $2 != -* ]] || die "$1 needs a value; see install.sh --help"
      case $1 in
        --manager) manager=$2 ;; --join-token) token=$2 ;; --advertise-addr) advertise=$2 ;;
        --from) from=$2 ;; --root) root=$2 ;;
      esac
      shift 2 ;;
    --uninstall) uninstall=1 && shift ;;
    --purge) purge=1 && shift ;;
    --no-start) start=0 && shift ;;
    -h | --help) usage && exit 0 ;;
    -*) die "unknown option $1; see install.sh --help" ;;
    *) die "unknown role $1; use manager or agent" ;;
  esac
done
[ -n "$role" ] || die "no role given; use install.sh manager|agent [options] (see --help)"
[ -d "$root" ] || die "--root $root is not a directory; create it first"
root=$(cd "$root" && pwd)
R=${root%/} # prefix of every target path: empty when installing into /

if [ "$role" = manager ]; then
  bin=ctmgr data_default=/var/lib/ctnet build_dir=$here/../packages/cli/dist/bin
  for given in "--manager:$manager" "--join-token:$token" "--advertise-addr:$advertise"; do
    [ -z "${given#*:}" ] || die "${given%%:*} is for the agent; the manager's settings go in /etc/ctnet/ctmgr.env (see ctmgr serve --help)"
  done
else
  bin=ctagent data_default=/var/lib/ctnet/agent build_dir=$here/../packages/agent/dist/bin
fi
unit=$bin.service
env_path=/etc/ctnet/$bin.env
run_cmd=$([ "$role" = manager ] && echo "ctmgr serve" || echo "ctagent run")" --config $env_path"
manifest=$R/var/lib/ctnet/install-manifest
if ((uninstall)); then
  [ -z "$manager$token$advertise$from" ] && ((start)) || die "--uninstall takes only --root and --purge"
else
  ((!purge)) || die "--purge goes with --uninstall"
fi
# Values are written unquoted into the env file: refuse what would need quoting there.
[ -z "$token" ] || [[ $token =~ ^CTNET-1-[0-9a-z]{50}-[0-9a-z]{25}$ ]] ||
  die 'the join token is malformed; it looks like CTNET-1-<50 digits and letters>-<25 digits and letters>: print a valid one on a manager with "ctmgr join-token worker"'
[ -z "$manager" ] || [[ $manager =~ ^[][A-Za-z0-9.:,_-]+$ ]] ||
  die "--manager $manager is not a list of addresses; give HOST[:PORT][,HOST[:PORT]...], e.g. 10.0.0.1:4700"
[ -z "$advertise" ] || [[ $advertise =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$|^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*$ ]] ||
  die "--advertise-addr $advertise is not an IP address; give this host's underlay address, e.g. 192.168.1.10"

systemd_up() { [ -z "$R" ] && [ -d /run/systemd/system ]; }

# The last value of KEY in the installed env file (quotes removed), or nothing.
setting() {
  [ -f "$R$env_path" ] || return 0
  sed -n -E "s/^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=[[:space:]]*//p" "$R$env_path" |
    tail -n1 | sed -E "s/^([\"'])(.*)\1\$/\2/"
}

# ---- preflight (nothing is written before it passes) ----------------------------------------
check_node() {
  local node v
  node=$(command -v node) || die "Node.js not found; ctnet's executables need Node.js >= 20 on PATH (e.g. the nodejs package from NodeSource)"
  if systemd_up; then
    PATH=$SYSTEMD_PATH command -v node >/dev/null ||
      die "node ($node) is not on systemd's PATH, so the service could not start; link it: ln -s $node /usr/local/bin/node"
    node=$(PATH=$SYSTEMD_PATH command -v node)
  fi
  v=$("$node" -p 'process.versions.node' 2>/dev/null) || die "$node does not run; reinstall Node.js >= 20"
  [[ ${v%%.*} =~ ^[0-9]+$ ]] && [ "${v%%.*}" -ge 20 ] || die "Node.js $v ($node) is too old; ctnet needs Node.js >= 20"
}

# VXLAN needs the port on the host. A process holding it is named; a kernel socket with no
# process is a VXLAN device, which is fine when it is one of ctnet's own (ctvx-*, a reinstall).
check_vxlan_port() {
  command -v ss >/dev/null || { note "ss not found (iproute2): skipped the check that $VXLAN_PORT/udp is free"; return 0; }
  local held dev
  held=$(ss -Huanp "sport = :$VXLAN_PORT" | head -n1)
  [ -n "$held" ] || return 0
  if [[ $held =~ users:\(\(\"([^\"]+)\",pid=([0-9]+) ]]; then
    die "$VXLAN_PORT/udp (VXLAN) is already in use by ${BASH_REMATCH[1]} (pid ${BASH_REMATCH[2]}); stop it, or run the cluster on another port (ctmgr serve --vxlan-port)"
  fi
  dev=$(ip -d -o link show type vxlan 2>/dev/null |
    awk -v p="$VXLAN_PORT" '$0 ~ " dstport " p "( |$)" { n = $2; sub(/:$/, "", n); sub(/@.*/, "", n); if (n !~ /^ctvx-/) print n }' | head -n1)
  [ -z "$dev" ] || die "$VXLAN_PORT/udp (VXLAN) is already in use by the VXLAN device $dev, not ctnet's; delete it (ip link del $dev) or run the cluster on another port (ctmgr serve --vxlan-port)"
}

if ((!uninstall)); then
  check_node
  if [ -z "$R" ] && [ "$role" = agent ]; then check_vxlan_port; fi
fi
[ -n "$R" ] || [ "$(id -u)" -eq 0 ] || die "must run as root to install into /; run it with sudo, or stage the files with --root DIR"

if ((!uninstall)); then
  if [ "$role" = agent ]; then
    [ -n "$manager" ] || [ -n "$(setting CTNET_MANAGER)" ] ||
      die "the agent needs --manager ADDR (a manager's gRPC address, e.g. 10.0.0.1:4700); it is kept in $env_path for later runs"
    data=$(setting CTNET_DATA_DIR)
    data=${data:-$data_default}
    if [ -z "$token" ] && [ -z "$(setting CTNET_JOIN_TOKEN)" ] && [ ! -f "$R$data/tls/cert.pem" ]; then
      die "the agent needs --join-token on its first install (no node certificate in $data/tls); print one on a manager with \"ctmgr join-token worker\""
    fi
  fi
  # Sources: --from, else this script's bin/ (the .deb and tarball layout), else the build tree.
  if [ -n "$from" ]; then src=$from cni_src=$from/ctnet
  elif [ -e "$here/bin/$bin" ]; then src=$here/bin cni_src=$here/bin/ctnet
  else src=$build_dir cni_src=$here/../packages/cni/dist/ctnet
  fi
  [ -f "$src/$bin" ] || die "$src/$bin not found; build it first (npm run build) or pass --from DIR holding $bin"
  [ -f "$here/systemd/$unit" ] || die "$here/systemd/$unit not found; run the install.sh that ships with the units"
fi

# ---- the manifest ------------------------------------------------------------------------
# One line per path it created, as it is on the target (without ROOT): "d /etc/ctnet" for a
# directory (either role's), "agent /etc/ctnet/ctagent.env" for a file of one role. Sorted
# by path, so that in reverse every child comes before its parent.
recorded=()
[ -f "$manifest" ] && mapfile -t recorded <"$manifest"
listed() { local e; for e in "${recorded[@]}"; do [ "${e#* }" = "$1" ] && return 0; done; return 1; }
record() { listed "$2" || recorded+=("$1 $2"); }
save_manifest() {
  [ -d "$(dirname "$manifest")" ] && ((${#recorded[@]})) || return 0
  printf '%s\n' "${recorded[@]}" | sort -u -k2 >"$manifest.tmp" && chmod 0600 "$manifest.tmp" && mv -f "$manifest.tmp" "$manifest"
}

# Creates each missing directory of $1 (the last one with mode $2), listing what it created.
ensure_dir() {
  local path='' part
  IFS=/ read -ra parts <<<"${1#/}"
  for part in "${parts[@]}"; do
    path=$path/$part
    [ -d "$R$path" ] && continue
    mkdir -m "$([ "$path" = "$1" ] && echo "$2" || echo 0755)" "$R$path"
    record d "$path"
  done
}

changed=0
# Puts file $1 at target $2 with mode $3: replaced by a rename (a reader never sees half a file),
# and only when the content differs.
place() {
  local target=$R$2
  ensure_dir "$(dirname "$2")" 0755
  if [ -e "$target" ] && ! listed "$2"; then
    note "$2 was there before: updated, but --uninstall will leave it"
  else
    record "$role" "$2"
  fi
  if ! cmp -s "$1" "$target" 2>/dev/null; then
    install -m "$3" "$1" "$target.tmp.$$" && mv -f "$target.tmp.$$" "$target"
    changed=1
  fi
  chmod "$3" "$target"
}

# Sets KEY=VALUE in env file $1: replaces the key's line(s), or appends it.
set_key() {
  awk -v k="$2" -v v="$3" '
    $0 ~ "^[ \t]*(export[ \t]+)?" k "[ \t]*=" { if (!done) print k "=" v; done = 1; next }
    { print }
    END { if (!done) print k "=" v }' "$1" >"$1.new"
  mv -f "$1.new" "$1"
}

# ---- uninstall ---------------------------------------------------------------------------
if ((uninstall)); then
  printf '%s\n' "${recorded[@]}" | grep -q "^$role " || { note "nothing to uninstall: $R/var/lib/ctnet/install-manifest lists no $role files"; exit 0; }
  data=$(setting CTNET_DATA_DIR)
  data=${data:-$data_default}
  if systemd_up; then
    if systemctl -q is-enabled "$unit" 2>/dev/null || systemctl -q is-active "$unit"; then systemctl disable -q --now "$unit"; fi
  elif command -v systemctl >/dev/null && [ -f "$R/etc/systemd/system/$unit" ]; then
    systemctl --root="$root" -q disable "$unit" 2>/dev/null || true # the enable links, if any
  fi
  # The data first, so that the directories holding it can go below when they were ours.
  if ((purge)) && [ -d "$R$data" ]; then
    # Only a directory that is ctnet's: the default, or one holding what the role keeps there
    # (a CTNET_DATA_DIR=/var/lib typo must not empty /var/lib).
    case $role in
      manager) marks=("$R$data/admin" "$R$data/etcd") ;;
      agent) marks=("$R$data/tls" "$R$data/agent.json") ;;
    esac
    case $data in /*/*) ;; *) die "refusing to purge the data directory $data; delete it by hand" ;; esac
    [ "$data" = "$data_default" ] || [ -e "${marks[0]}" ] || [ -e "${marks[1]}" ] ||
      die "refusing to purge $data: it holds none of the $role's data (${marks[*]#"$R"}); delete it by hand"
    if [ "$role" = manager ]; then
      # The agent's data may live inside the manager's, and so does the manifest: not ours.
      find "$R$data" -mindepth 1 -maxdepth 1 ! -name agent ! -name install-manifest -exec rm -rf {} +
    else
      rm -rf -- "$R$data"
      note "ctnet's devices, nftables tables and sandboxes on this host stay until it reboots"
    fi
    note "deleted the data in $data"
  fi
  # This role's files go, then the listed directories, deepest first, each once it is empty.
  # The other role's files, if any, keep the manifest (and so /var/lib/ctnet) for later.
  left=()
  for entry in "${recorded[@]}"; do
    if [ "${entry%% *}" = "$role" ]; then rm -f "$R${entry#* }"; else left+=("$entry"); fi
  done
  printf '%s\n' "${left[@]}" | grep -Eq '^(agent|manager) ' || rm -f "$manifest"
  recorded=()
  for entry in $(printf '%s\n' "${left[@]}" | sort -r -k2 | tr ' ' ':'); do
    kind=${entry%%:*} path=${entry#*:}
    if [ "$kind" != d ]; then recorded+=("$kind $path")
    elif [ -d "$R$path" ] && ! rmdir "$R$path" 2>/dev/null; then
      recorded+=("d $path")
      [ -f "$manifest" ] || note "kept $path: it is not empty"
    fi
  done
  [ ! -f "$manifest" ] || save_manifest
  ! systemd_up || systemctl daemon-reload
  note "$role uninstalled"
  exit 0
fi

# ---- install -----------------------------------------------------------------------------
work=''
trap 'rm -f "$work"; save_manifest' EXIT # whatever happens from here, what was created is listed
ensure_dir /var/lib/ctnet 0700
place "$src/$bin" "/usr/local/bin/$bin" 0755
if [ "$role" = agent ] && [ -f "$cni_src" ]; then place "$cni_src" /opt/cni/bin/ctnet 0755; fi
place "$here/systemd/$unit" "/etc/systemd/system/$unit" 0644

work=$(mktemp)
if [ -f "$R$env_path" ]; then
  cat "$R$env_path" >"$work"
else
  cat >"$work" <<EOF
# ctnet $role settings, read by \`$run_cmd\` ($unit).
# One KEY=VALUE a line, with the environment variable names of \`$bin --help\`;
# a key the $role does not know stops it. install.sh updates the keys it is given
# and keeps the rest.
EOF
fi
[ -z "$manager" ] || set_key "$work" CTNET_MANAGER "$manager"
[ -z "$token" ] || set_key "$work" CTNET_JOIN_TOKEN "$token"
# A token is for the first join. Once this host holds its node certificate a kept token is
# dropped: after a CA rotation it would name a CA that is gone (the agent copes, but says so).
if [ "$role" = agent ] && [ -z "$token" ] && [ -f "$R$data/tls/cert.pem" ] && grep -Eq '^[[:space:]]*(export[[:space:]]+)?CTNET_JOIN_TOKEN[[:space:]]*=' "$work"; then
  grep -Ev '^[[:space:]]*(export[[:space:]]+)?CTNET_JOIN_TOKEN[[:space:]]*=' "$work" >"$work.new" && mv -f "$work.new" "$work"
  note "this host has joined (its node certificate is in $data/tls): CTNET_JOIN_TOKEN removed from $env_path"
fi
[ -z "$advertise" ] || set_key "$work" CTNET_ADVERTISE_ADDR "$advertise"
place "$work" "$env_path" 0600
save_manifest

if systemd_up; then
  systemctl daemon-reload
  active=0
  systemctl -q is-active "$unit" && active=1
  systemctl -q enable "$unit"
  if ((!start)); then
    note "$unit enabled, not started (--no-start): systemctl start $unit"
  else
    # A running service picks up new files only when restarted; an unchanged one is left be.
    verb=$( ((active && changed)) && echo restart || echo start)
    systemctl "$verb" "$unit" || die "$unit did not $verb; see journalctl -u $unit"
    note "$unit is running ($verb): systemctl status $unit"
  fi
else
  # Offline, systemctl only links the unit into multi-user.target.wants: started at next boot.
  if command -v systemctl >/dev/null; then
    out=$(systemctl --root="$root" -q enable "$unit" 2>&1) || die "systemctl --root=$root enable $unit failed: $out"
  fi
  if [ -z "$R" ]; then
    note "systemd is not running here (no /run/systemd/system): files installed, nothing started; run it by hand: $run_cmd"
  else
    note "$role installed into $root (enabled there); nothing started"
  fi
fi
