#!/usr/bin/env bash
# Installs what ctnet needs on a Debian machine (as root) and builds it. Idempotent and quick
# when everything is already there; used by the demo, the tests and CI alike.
set -euo pipefail
cd "$(dirname "$0")/.."

# apt package : a command it provides
wanted=(etcd-server:etcd iproute2:ip nftables:nft iputils-ping:ping dnsutils:dig protobuf-compiler:protoc dnsperf:dnsperf dnsmasq-base:dnsmasq gcc:cc containerd:containerd busybox-static:busybox iptables:iptables docker.io:dockerd prometheus:promtool)
missing=()
for pair in "${wanted[@]}"; do
  command -v "${pair#*:}" >/dev/null 2>&1 || missing+=("${pair%%:*}")
done
# The CNI plugins are not on PATH; the tests chain Debian's (portmap) and compare with bridge.
[ -x /usr/lib/cni/portmap ] || missing+=(containernetworking-plugins)
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian may start a stock etcd on 2379 (and dockerd) after install, where systemd runs;
  # ctnet uses neither: its labs run their own.
fi
command -v node >/dev/null || { echo "setup: Node.js >= 20 is required (apt-get install nodejs npm)" >&2; exit 1; }

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: build"
npx turbo run build --output-logs=errors-only
