#!/usr/bin/env bash
# Builds ctnet_<version>_<arch>.deb from the built tree, offline (dpkg-deb only).
#
#   deploy/package.sh [--out DIR]      (default: dist/ at the repository root)
#
# The package carries install.sh's own layout under /usr/share/ctnet (install.sh, systemd/,
# bin/, examples/) and links /usr/sbin/ctnet-install to it. It does not start anything:
# a host becomes a manager or an agent with `ctnet-install manager` or
# `ctnet-install agent --manager ADDR --join-token TOKEN`, which copies the executables to
# /usr/local/bin and keeps its manifest, as from a checkout. Debian packages may not ship
# files in /usr/local themselves, and the units name /usr/local/bin: hence the two steps.
# An upgrade refreshes the roles installed on the host; removing the package uninstalls them
# (their data in /var/lib/ctnet stays).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "package.sh: $*" >&2; exit 1; }

out=$repo/dist
while [ $# -gt 0 ]; do
  case $1 in
    --out) [ $# -ge 2 ] && [ -n "$2" ] || die "--out needs a directory"; out=$2; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1; the only one is --out DIR" ;;
  esac
done
command -v dpkg-deb >/dev/null || die "dpkg-deb not found; install dpkg (apt-get install dpkg)"

version=$(node -p "require(process.argv[1]).version" "$repo/packages/cli/package.json")
arch=$(dpkg --print-architecture)
ctmgr=$repo/packages/cli/dist/bin/ctmgr
ctagent=$repo/packages/agent/dist/bin/ctagent
cni=$repo/packages/cni/dist/ctnet # C, so the package is per architecture; optional
for f in "$ctmgr" "$ctagent"; do
  [ -f "$f" ] || die "${f#"$repo"/} not found; build first (npm run build)"
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage" # mktemp made it 0700: it becomes the package's ./
share=$stage/usr/share/ctnet
install -d -m 0755 "$share/bin" "$share/systemd" "$share/examples" "$stage/usr/sbin" "$stage/DEBIAN"
install -m 0755 "$ctmgr" "$ctagent" "$share/bin/"
if [ -f "$cni" ]; then install -m 0755 "$cni" "$share/bin/"; else echo "package.sh: no CNI plugin (${cni#"$repo"/}): packaged without it"; fi
install -m 0644 "$repo/deploy/systemd/ctmgr.service" "$repo/deploy/systemd/ctagent.service" "$share/systemd/"
install -m 0755 "$repo/deploy/install.sh" "$share/install.sh"
ln -s ../share/ctnet/install.sh "$stage/usr/sbin/ctnet-install"

# Examples of /etc/ctnet/*.env (install.sh writes the real ones, 0600, with the given keys).
cat >"$share/examples/ctmgr.env" <<'EOF'
# /etc/ctnet/ctmgr.env: read by `ctmgr serve --config /etc/ctnet/ctmgr.env` (ctmgr.service).
# KEY=VALUE lines with the variable names of `ctmgr serve --help`; unknown keys are refused.
#CTNET_LISTEN=0.0.0.0:4700
#CTNET_HTTP=127.0.0.1:4701
#CTNET_DATA_DIR=/var/lib/ctnet
#CTNET_ETCD_ENDPOINTS=https://10.0.0.5:2379
#CTNET_VXLAN_PORT=4789
EOF
cat >"$share/examples/ctagent.env" <<'EOF'
# /etc/ctnet/ctagent.env: read by `ctagent run --config /etc/ctnet/ctagent.env` (ctagent.service).
# KEY=VALUE lines with the variable names of `ctagent --help`; unknown keys are refused.
CTNET_MANAGER=10.0.0.1:4700
# needed until the node has its certificate (DATA-DIR/tls); "ctmgr join-token worker"
#CTNET_JOIN_TOKEN=CTNET-1-...
#CTNET_ADVERTISE_ADDR=192.168.1.10
#CTNET_DATA_DIR=/var/lib/ctnet/agent
EOF
chmod 0644 "$share/examples/"*

cat >"$stage/DEBIAN/control" <<EOF
Package: ctnet
Version: $version
Architecture: $arch
Maintainer: ctnet developers <root@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: nodejs (>= 20), iproute2, nftables
Suggests: etcd-server
Section: net
Priority: optional
Description: multi-host overlay network controller for containers
 ctmgr (manager and CLI) and ctagent (per-host agent): Docker Swarm's networking
 (overlay, embedded DNS, service VIPs, routing mesh) as a controller of its own,
 with a CNI plugin. Set a host up with ctnet-install manager|agent.
EOF

# Maintainer scripts act on the roles install.sh's manifest lists. A failure is reported but
# does not leave dpkg half-done: the host can be fixed with ctnet-install afterwards.
cat >"$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
# An upgrade brings the installed roles the new executables and units (and restarts them).
if [ "$1" = configure ] && [ -n "$2" ]; then
  for role in manager agent; do
    grep -q "^$role " /var/lib/ctnet/install-manifest 2>/dev/null || continue
    /usr/share/ctnet/install.sh "$role" || echo "ctnet: refreshing the $role failed; run ctnet-install $role" >&2
  done
fi
[ -n "$2" ] || echo "ctnet: set this host up with: ctnet-install manager, or ctnet-install agent --manager ADDR --join-token TOKEN"
EOF
cat >"$stage/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
# Removing the package takes away what ctnet-install installed (not the data in /var/lib/ctnet).
if [ "$1" = remove ]; then
  for role in manager agent; do
    grep -q "^$role " /var/lib/ctnet/install-manifest 2>/dev/null || continue
    /usr/share/ctnet/install.sh "$role" --uninstall || echo "ctnet: uninstalling the $role failed; run ctnet-install $role --uninstall" >&2
  done
fi
EOF
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm"

mkdir -p "$out"
deb=$out/ctnet_${version}_${arch}.deb
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
