#!/usr/bin/env bash
# bench/network.sh: what networking costs containers, berth beside a
# private dockerd (Debian's docker.io), both driven by the docker CLI:
# `run --rm busybox true` with --network none and bridge (the cost is the
# difference), and iperf3 throughput container to container on the bridge
# and host to container through a published port (127.0.0.1 and the
# gateway). The daemons take turns run by run; it prints medians and
# ratios (>1: berth is better). Each daemon runs in a network namespace of
# its own, so neither's bridge, firewall rules or NAT reach the host's
# tables or the other daemon.
#
#   bench/network.sh [ROUNDS] [DIR]   # as root; 20 rounds, work in /var/tmp
#   BERTH_BIN=/path/to/berth bench/network.sh   # that berth, not a fresh build
#   BERTH_BIN=none bench/network.sh             # docker alone
#   NETWORKBENCH_ARGS="-ops iperf -iperf-rounds 5 -iperf-time 10" bench/network.sh
#
# The work is in bench/networkbench (Go), which cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
[ "$(id -u)" = 0 ] || { echo "bench/network.sh: run as root" >&2; exit 2; }
for t in dockerd docker iperf3 nsenter ip debootstrap; do
	command -v "$t" >/dev/null || { echo "bench/network.sh: needs $t (apt-get install docker.io iperf3 util-linux iproute2 debootstrap)" >&2; exit 2; }
done
bin=$(mktemp -d /var/tmp/berth-networkbench-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
berth=none
if [ "${BERTH_BIN:-}" = none ]; then
	:
elif [ -n "${BERTH_BIN:-}" ]; then
	cp "$BERTH_BIN" "$bin/berth"
	berth=$bin/berth
else
	hack/build "$bin/berth"
	berth=$bin/berth
fi
go build -tags netgo,osusergo -o "$bin/networkbench" ./bench/networkbench
# shellcheck disable=SC2086 # NETWORKBENCH_ARGS is a list of arguments
"$bin/networkbench" -berth "$berth" -rounds "${1:-20}" -dir "${2:-/var/tmp}" ${NETWORKBENCH_ARGS:-}
