#!/usr/bin/env bash
# bench/cp.sh: docker cp of one file into and out of a running container,
# docker's CLI against a private dockerd and against berth, and berth's CLI
# against berth; medians of 5 runs in seconds.
#
#   bench/cp.sh [MiB]        # as root; MiB defaults to 256
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH GOFLAGS=-tags=netgo,osusergo
[ "$(id -u)" = 0 ] || { echo "bench/cp.sh: run as root" >&2; exit 2; }
# The leak checker judges the whole host; other work on a shared machine
# would fail a benchmark run.
export BERTH_LEAKCHECK=0 BERTH_BENCH_CP=${1:-256}
go test -count=1 -timeout 30m -run '^TestCpThroughput$' -v ./cli/command/ | grep '^CP '
