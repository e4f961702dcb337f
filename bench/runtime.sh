#!/usr/bin/env bash
# bench/runtime.sh: time `run` of one busybox bundle running `true` with
# berth's runtime, runc and crun, in one hyperfine run, and print the ratios.
#
#   bench/runtime.sh [RUNS [ROUNDS]]   # as root; RUNS 100, ROUNDS 5 by default
#   BERTH_BIN=/path/to/berth bench/runtime.sh   # time that binary, not a build of the tree
#   BERTH_BASE=/path/to/berth bench/runtime.sh  # and that one too, in the same rounds
#
# Every runtime gets the same bundle (runc's default spec, no terminal,
# ociVersion 1.0.2 so crun 1.8 accepts it) and its own --root; hyperfine
# runs them in rounds (below), with warmups.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
RUNS=${1:-100}
ROUNDS=${2:-5}
[ "$(id -u)" = 0 ] || { echo "bench/runtime.sh: run as root" >&2; exit 2; }
for t in hyperfine runc crun busybox python3; do
	command -v "$t" >/dev/null || { echo "bench/runtime.sh: needs $t (apt-get install hyperfine runc crun busybox-static)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
# The runtimes' state roots go on tmpfs, as their defaults (/run/<name>) do
# on most hosts. This host's /run and /tmp are ext4 without a journal, where
# a new inode is found by skipping the ones deleted in the last seconds: with
# other agents churning files, a state file's create cost up to 1 ms, noise
# unrelated to the runtimes (STATE=/some/dir to choose).
state=$(mktemp -d "${STATE:-/dev/shm}/berth-bench-state.XXXXXX")
holder=
cleanup() {
	set +e # every step runs, whatever the one before returned
	# The holder's mount namespace holds copies of our mounts until it is gone.
	[ -n "$holder" ] && { kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; }
	"$work/berth" runtime --root "$state/root-berth" delete -f bench >/dev/null 2>&1
	[ -x "$work/berth-base" ] && "$work/berth-base" runtime --root "$state/root-base" delete -f bench >/dev/null 2>&1
	umount "$state"/root-berth/.berth-* "$state"/root-base/.berth-* 2>/dev/null
	rmdir /sys/fs/cgroup/*/berth 2>/dev/null
	rm -rf "$work" "$state"
}
trap cleanup EXIT
if [ -n "${BERTH_BIN:-}" ]; then # a prebuilt berth, e.g. an older one to compare
	cp "$BERTH_BIN" "$work/berth"
else
	hack/build "$work/berth"
fi

# The bundle: busybox with one symlink per applet.
b=$work/bundle
mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/sys" "$b/rootfs/dev" "$b/rootfs/tmp"
cp /bin/busybox "$b/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$b/rootfs/bin/$a"; done
(cd "$b" && runc spec)
python3 - "$b/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["ociVersion"] = "1.0.2"
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
json.dump(c, open(p, "w"), indent=1)
PY

berth="$work/berth runtime --root $state/root-berth run --bundle $b bench"
runc="runc --root $state/root-runc run --bundle $b bench"
# crun 1.8 refuses a hybrid host whose cgroup2 half offers any controller,
# and this host's offers hugetlb (not in v1). So crun runs in a mount
# namespace without /sys/fs/cgroup/unified, entered with nsenter; the cost of
# nsenter itself is measured too and taken off crun's figure.
unshare --mount --propagation private sh -c 'umount -l /sys/fs/cgroup/unified; echo ready; exec sleep 100000' >"$work/ns.out" &
holder=$!
for _ in $(seq 100); do grep -q ready "$work/ns.out" 2>/dev/null && break; sleep 0.05; done
nsenter="nsenter --mount=/proc/$holder/ns/mnt"
crun="$nsenter crun --root $state/root-crun run --bundle $b bench"
nsbase="$nsenter true"
for c in "$berth" "$runc" "$crun"; do
	$c || { echo "bench/runtime.sh: '$c' failed" >&2; exit 1; }
done

# The machine is shared: the runs go in ROUNDS rounds of RUNS/ROUNDS per
# command, the command order rotating, so that a busy spell hits every
# runtime alike; the figures are over all rounds' runs.
names=(berth runc crun+nsenter nsenter)
cmds=("$berth" "$runc" "$crun" "$nsbase")
if [ -n "${BERTH_BASE:-}" ]; then # another berth in the same rounds, e.g. before a change
	cp "$BERTH_BASE" "$work/berth-base"
	names+=(berth-base)
	cmds+=("$work/berth-base runtime --root $state/root-base run --bundle $b bench")
	${cmds[4]} || { echo "bench/runtime.sh: '${cmds[4]}' failed" >&2; exit 1; }
fi
n=${#names[@]}
per=$(((RUNS + ROUNDS - 1) / ROUNDS))
for ((round = 0; round < ROUNDS; round++)); do
	args=()
	for ((i = 0; i < n; i++)); do
		j=$(((i + round) % n))
		# Odd rounds go the other way round: each command's batch starts
		# in what the one before it left (page cache, cgroups being
		# freed), and a fixed neighbour biased pairs by ~6%.
		((round % 2)) && j=$(((n - 1 - i + round) % n))
		args+=(-n "${names[j]}" "${cmds[j]}")
	done
	hyperfine -N --warmup 5 --runs "$per" --export-json "$work/result-$round.json" "${args[@]}" >&2
done

python3 - "$work"/result-*.json <<'PY'
import json, sys, statistics
times = {}
for f in sys.argv[1:]:
    for x in json.load(open(f))["results"]:
        times.setdefault(x["command"], []).extend(x["times"])
med = {n: statistics.median(t) for n, t in times.items()}
print(f"runtime run of busybox true ({len(times['berth'])} runs each; ms, mean ± stddev, median):")
for n in ("berth", "berth-base", "runc", "crun+nsenter", "nsenter"):
    if n not in times:
        continue
    t = times[n]
    print(f"  {n:13s} {statistics.mean(t)*1e3:7.2f} ± {statistics.stdev(t)*1e3:5.2f}   median {med[n]*1e3:7.2f}")
crun = med["crun+nsenter"] - med["nsenter"]
print(f"  crun (less nsenter) median {crun*1e3:.2f}")
b = med["berth"]
print(f"ratios (median): berth/crun = {b/crun:.2f}   berth/runc = {b/med['runc']:.2f}   runc/crun = {med['runc']/crun:.2f}")
if "berth-base" in med:
    print(f"  berth-base/crun = {med['berth-base']/crun:.2f}   berth/berth-base = {b/med['berth-base']:.2f}")
PY
