#!/usr/bin/env bash
# bench/image.sh: time load and save of a ~200 MB Debian image (debootstrap
# minbase) with berth beside docker load/save, skopeo copy and umoci unpack,
# alternating the tools run by run, and print medians and ratios.
#
#   bench/image.sh [ROUNDS] [DIR]   # as root; 5 rounds, work in /var/tmp
#
# The work is in bench/imagebench (Go): it builds the image archive from the
# cached Debian rootfs, starts a private dockerd, and cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
[ "$(id -u)" = 0 ] || { echo "bench/image.sh: run as root" >&2; exit 2; }
for t in dockerd docker skopeo umoci debootstrap; do
	command -v "$t" >/dev/null || { echo "bench/image.sh: needs $t (apt-get install docker.io skopeo umoci debootstrap)" >&2; exit 2; }
done
exec go run -tags netgo,osusergo ./bench/imagebench -rounds "${1:-5}" -dir "${2:-/var/tmp}"
