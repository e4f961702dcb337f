#!/usr/bin/env bash
# bench/shim.sh: memory of the per-container monitor with N running `sleep`
# containers: berth's shim as `berth shim` and as the small berth-shim
# binary, beside docker's containerd-shim-runc-v2 (private dockerd) and
# conmon when installed. Prints RSS and PSS per shim in kB, and PSS ratios.
#
#   bench/shim.sh [N]        # as root; N defaults to 10
#
# PSS divides shared pages (the binary's text) among the processes that map
# them, so it is the fair per-container cost; it falls with N.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH GOFLAGS=-tags=netgo,osusergo
N=${1:-10}
[ "$(id -u)" = 0 ] || { echo "bench/shim.sh: run as root" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# The leak checker judges the whole host; other work on a shared machine
# would fail a benchmark run.
export BERTH_LEAKCHECK=0 BERTH_BENCH_N=$N
go test -count=1 -run '^TestMemory$' -v ./shim/ | grep -o 'MEM .*' | sed 's/^MEM berth-shim/MEM berth-shim(berth)/' >>"$out"
BERTH_TEST_SHIM=small BERTH_BENCH_DOCKER=1 go test -count=1 -run '^TestMemory$' -v ./shim/ | grep -o 'MEM .*' |
	sed 's/^MEM berth-shim/MEM berth-shim(small)/' >>"$out"
if command -v conmon >/dev/null; then
	echo "conmon is installed but not measured yet" >&2
else
	echo "conmon: not installed (podman's is 1-2 MB RSS per container per DESIGN.md)"
fi
awk '
{ name=$2; for (i=3; i<=NF; i++) { split($i, kv, "="); v[name, kv[1]] = kv[2] } names[++n] = name }
END {
	printf "%-26s %4s %8s %8s %9s %9s\n", "shim", "n", "rss_kb", "pss_kb", "anon_kb", "file_kb"
	for (i = 1; i <= n; i++) { m = names[i]
		printf "%-26s %4s %8s %8s %9s %9s\n", m, v[m,"n"], v[m,"rss_kb"], v[m,"pss_kb"], v[m,"pss_anon_kb"], v[m,"pss_file_kb"] }
	d = "containerd-shim-runc-v2"
	if (v[d, "pss_kb"] > 0) for (i = 1; i <= n; i++) { m = names[i]; if (m != d)
		printf "PSS %s / %s = %.2f\n", m, d, v[m, "pss_kb"] / v[d, "pss_kb"] }
}' "$out"
