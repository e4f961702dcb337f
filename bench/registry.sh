#!/usr/bin/env bash
# bench/registry.sh: time pull and push against a local registry (Debian's
# docker-registry on 127.0.0.1, plain HTTP) with a berth daemon beside a
# private dockerd (Debian's docker.io), for a ~200 MB Debian image (one
# layer) and a many-layer image; the daemons take turns run by run, and it
# prints medians and docker/berth ratios (>1: berth is faster).
#
#   bench/registry.sh [ROUNDS] [DIR]   # as root; 5 rounds, work in /var/tmp
#   BERTH_BIN=/path/to/berth bench/registry.sh   # that berth, not a fresh build
#   REGISTRYBENCH_ARGS="-images layers -ops pull -layers 40 -sync-pull" bench/registry.sh
#
# Before each timed pull the image is removed from the daemon (rmi, image
# prune -a); each timed push goes to a fresh empty registry, so every blob
# is uploaded. Both daemons are driven by the docker CLI (the same client),
# berth also by its own CLI when that has pull. The work is in
# bench/registrybench (Go), which cleans up after itself.
#
# This VM's root is ext4 without a journal: for 60 s after a removal, every
# file creation rescans the inodes freed (the daemons' roots share block
# groups), so pulls slow down round after round for both daemons, each
# paying for the other's removals too. -settle 61s waits that out before
# each timed run: the engines without the file system's memory.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
[ "$(id -u)" = 0 ] || { echo "bench/registry.sh: run as root" >&2; exit 2; }
for t in dockerd docker skopeo docker-registry debootstrap; do
	command -v "$t" >/dev/null || { echo "bench/registry.sh: needs $t (apt-get install docker.io skopeo docker-registry debootstrap)" >&2; exit 2; }
done
bin=$(mktemp -d /var/tmp/berth-registrybench-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
if [ -n "${BERTH_BIN:-}" ]; then
	cp "$BERTH_BIN" "$bin/berth"
else
	hack/build "$bin/berth"
fi
go build -tags netgo,osusergo -o "$bin/registrybench" ./bench/registrybench
# shellcheck disable=SC2086 # REGISTRYBENCH_ARGS is a list of arguments
"$bin/registrybench" -berth "$bin/berth" -rounds "${1:-5}" -dir "${2:-/var/tmp}" ${REGISTRYBENCH_ARGS:-}
