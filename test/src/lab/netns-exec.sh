#!/bin/sh
# netns-exec.sh NS CMD [ARG...]: run CMD in network namespace NS, as the lab runs everything.
#
# Like "ip netns exec NS CMD" (its own mount namespace, /sys showing NS's devices), with one
# difference that the lab needs: "ip netns exec" makes every mount a slave, so a namespace CMD
# creates with "ip netns add" (an agent's sandbox) would be bound in CMD's mount namespace
# only: the lab could neither see, enter nor delete it, and the root namespace would keep an
# empty /run/netns file. Here /run/netns stays shared with the root mount namespace, as it is
# for an agent on a real host. Ends in exec, so the PID the lab started is CMD's PID.
set -eu
ns=$1
shift
exec nsenter --net="/run/netns/$ns" -- unshare --mount --propagation unchanged -- /bin/sh -c '
  set -e
  # Private first, so neither the unmount nor the new /sys reaches the root mount namespace.
  mount --make-private /
  umount -l /sys 2>/dev/null || true
  mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
  exec "$@"' netns-exec "$@"
