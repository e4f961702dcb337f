#!/usr/bin/env bash
# bench/daemon.sh: berth daemon end to end beside docker (a private dockerd
# of Debian's docker.io with its containerd) and podman, in one run:
#   run     `run --rm --network none busybox true` (CLI → daemon → shim →
#           runtime → exit → removal)
#   create  `create busybox true` + `rm` of it
#   ps      `ps -a` with 20 containers
#   memory  RSS and PSS of the daemons idle and with N running containers,
#           the daemons alone and with their shims
# Times are medians over ROUNDS rounds whose command order rotates, so that
# a busy spell on this shared machine hits every engine alike; figures go
# out as ratios.
#
#   bench/daemon.sh [RUNS [ROUNDS [N]]]   # as root; 30 runs, 3 rounds, N=100
#   BERTH_BIN=/path/to/berth bench/daemon.sh
#   BERTH_BASE=/path/to/berth bench/daemon.sh   # and that berth too (its own
#       daemon, driven by the docker CLI and its own CLI) in the same rounds
#
# berth is driven by the docker CLI (the same client as for dockerd, so the
# daemons are compared) and by its own CLI when that has `run`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
RUNS=${1:-30}
ROUNDS=${2:-3}
N=${3:-100}
[ "$(id -u)" = 0 ] || { echo "bench/daemon.sh: run as root" >&2; exit 2; }
for t in hyperfine docker dockerd busybox python3; do
	command -v "$t" >/dev/null || { echo "bench/daemon.sh: needs $t (apt-get install hyperfine docker.io busybox-static)" >&2; exit 2; }
done

work=$(mktemp -d /var/tmp/berth-bench-daemon.XXXXXX)
berthd_pid='' dockerd_pid='' based_pid=''
stop() { # pid: TERM, then KILL after 30 s
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || return 0
	for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$1" 2>/dev/null
}
cleanup() {
	set +e # every step runs, whatever the one before returned
	if [ -n "$berthd_pid" ]; then
		mapfile -t ids < <(docker -H "$B" ps -aq 2>/dev/null)
		[ ${#ids[@]} -gt 0 ] && docker -H "$B" rm -f "${ids[@]}" >/dev/null 2>&1
		stop "$berthd_pid"
	fi
	if [ -n "$based_pid" ]; then
		mapfile -t ids < <(docker -H "$BB" ps -aq 2>/dev/null)
		[ ${#ids[@]} -gt 0 ] && docker -H "$BB" rm -f "${ids[@]}" >/dev/null 2>&1
		stop "$based_pid"
	fi
	if [ -n "$dockerd_pid" ]; then
		mapfile -t ids < <(docker -H "$D" ps -aq 2>/dev/null)
		[ ${#ids[@]} -gt 0 ] && docker -H "$D" rm -f "${ids[@]}" >/dev/null 2>&1
		stop "$dockerd_pid"
	fi
	if [ -n "${podman:-}" ]; then
		$podman rm -af >/dev/null 2>&1
		$podman system reset -f >/dev/null 2>&1
	fi
	grep " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rmdir /sys/fs/cgroup/*/docker 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${BERTH_BIN:-}" ]; then
	cp "$BERTH_BIN" "$work/berth"
else
	hack/build "$work/berth"
fi

# busybox as a one-layer image, imported into each engine.
mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/rootfs/bin/$a"; done
mkdir -p "$work/rootfs/"{proc,sys,dev,tmp,etc}
tar -C "$work/rootfs" -cf "$work/busybox.tar" .

up() { # host: wait until a daemon answers
	for _ in $(seq 600); do docker -H "$1" version >/dev/null 2>&1 && return 0; sleep 0.1; done
	echo "bench/daemon.sh: no daemon at $1" >&2
	return 1
}
B=unix://$work/berth.sock
echo '{}' >"$work/daemon.json"
"$work/berth" daemon -H "$B" --data-root "$work/berth-data" --exec-root "$work/berth-exec" \
	--config-file "$work/daemon.json" >"$work/berthd.log" 2>&1 &
berthd_pid=$!
D=unix://$work/docker.sock
dockerd --host "$D" --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
	--pidfile "$work/dockerd.pid" --bridge none --iptables=false --ip6tables=false \
	--storage-driver overlay2 --containerd-namespace berth-bench \
	--containerd-plugins-namespace berth-bench-plugins >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
BB=unix://$work/berth-base.sock
if [ -n "${BERTH_BASE:-}" ]; then
	cp "$BERTH_BASE" "$work/berth-base"
	"$work/berth-base" daemon -H "$BB" --data-root "$work/base-data" --exec-root "$work/base-exec" \
		--config-file "$work/daemon.json" >"$work/based.log" 2>&1 &
	based_pid=$!
	up "$BB"
	docker -H "$BB" import "$work/busybox.tar" busybox:latest >/dev/null
fi
up "$B"
up "$D"
docker -H "$B" import "$work/busybox.tar" busybox:latest >/dev/null
docker -H "$D" import "$work/busybox.tar" busybox:latest >/dev/null

names=(berth docker) run=() create=() ps=()
for h in "$B" "$D"; do
	run+=("docker -H $h run --rm --network none busybox true")
	create+=("sh -c 'docker -H $h rm \$(docker -H $h create --network none busybox true) >/dev/null'")
	ps+=("docker -H $h ps -a")
done
if "$work/berth" run --help 2>/dev/null | grep -q "berth run"; then
	names+=(berth-cli)
	run+=("$work/berth -H $B run --rm --network none busybox true")
	create+=("sh -c '$work/berth -H $B rm \$($work/berth -H $B create --network none busybox true) >/dev/null'")
	ps+=("$work/berth -H $B ps -a")
fi
if [ -n "$based_pid" ]; then
	base=$work/berth-base
	names+=(berth-base)
	run+=("docker -H $BB run --rm --network none busybox true")
	create+=("sh -c 'docker -H $BB rm \$(docker -H $BB create --network none busybox true) >/dev/null'")
	ps+=("docker -H $BB ps -a")
	if "$base" run --help 2>/dev/null | grep -q "berth run"; then
		names+=(berth-base-cli)
		run+=("$base -H $BB run --rm --network none busybox true")
		create+=("sh -c '$base -H $BB rm \$($base -H $BB create --network none busybox true) >/dev/null'")
		ps+=("$base -H $BB ps -a")
	fi
fi
podman=
if command -v podman >/dev/null; then
	# Its own storage and state, so the host's podman is left alone.
	# crun 1.8 refuses this hybrid cgroup host, so podman uses runc; its
	# default rlimits exceed root's hard limit here (no CAP_SYS_RESOURCE).
	podman="podman --root $work/podman-root --runroot $work/podman-run --storage-driver overlay --cgroup-manager cgroupfs --events-backend none --runtime runc"
	pflags="--network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
	$podman import -q "$work/busybox.tar" busybox:latest >/dev/null
	names+=(podman)
	run+=("$podman run --rm $pflags busybox true")
	create+=("sh -c '$podman rm \$($podman create $pflags busybox true) >/dev/null'")
	ps+=("$podman ps -a")
fi
for c in "${run[@]}"; do sh -c "$c" || { echo "bench/daemon.sh: '$c' failed" >&2; exit 1; }; done

bench() { # label, commands...: rounds of hyperfine, order rotating
	local label=$1
	shift
	local cmds=("$@") n=$#
	local per=$(((RUNS + ROUNDS - 1) / ROUNDS))
	for ((round = 0; round < ROUNDS; round++)); do
		local args=()
		for ((i = 0; i < n; i++)); do
			j=$(((i + round) % n))
			args+=(-n "${names[j]}" "${cmds[j]}")
		done
		hyperfine --warmup 3 --runs "$per" --export-json "$work/$label-$round.json" "${args[@]}" >&2
	done
}
bench run "${run[@]}"
bench create "${create[@]}"
for i in $(seq 20); do
	docker -H "$B" create --network none busybox true >/dev/null
	[ -n "$based_pid" ] && docker -H "$BB" create --network none busybox true >/dev/null
	docker -H "$D" create --network none busybox true >/dev/null
	# shellcheck disable=SC2086 # $podman and $pflags are word lists
	[ -n "$podman" ] && $podman create $pflags busybox true >/dev/null
done
bench ps "${ps[@]}"
hosts=("$B" "$D")
[ -n "$based_pid" ] && hosts+=("$BB")
for h in "${hosts[@]}"; do
	mapfile -t ids < <(docker -H "$h" ps -aq)
	docker -H "$h" rm "${ids[@]}" >/dev/null
done
if [ -n "$based_pid" ]; then # memory is the tree's berth against docker's
	stop "$based_pid"
	based_pid=
fi
[ -n "$podman" ] && $podman rm -a >/dev/null

# Memory: the processes whose command line names this run's directory are
# the engines' (daemons, containerd, shims); containers run `sleep`.
mem() { # label pids...: sum RSS and PSS (kB) of the pids
	local rss=0 pss=0 p
	for p in "$@"; do
		[ -r "/proc/$p/smaps_rollup" ] || continue
		rss=$((rss + $(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup")))
		pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")))
	done
	echo "$1 $rss $pss"
}
engine_pids() { # pattern: pids of processes whose command line contains it
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "$1" && echo "${p#/proc/}"
	done
	return 0
}
containerd_pid() { pgrep -P "$dockerd_pid" containerd || true; }
# shellcheck disable=SC2046,SC2086 # pid lists are split on purpose
memrow() { # label: one line per engine
	local bshims dshims
	bshims=$(engine_pids "$work/berth-exec" | grep -vx "$berthd_pid" || true)
	dshims=$(pgrep -f "containerd-shim-runc-v2 -namespace berth-bench" || true)
	echo "$1 berthd $(mem x $berthd_pid | cut -d' ' -f2-) berth+shims $(mem x $berthd_pid $bshims | cut -d' ' -f2-)"
	echo "$1 dockerd+containerd $(mem x $dockerd_pid $(containerd_pid) | cut -d' ' -f2-) docker+shims $(mem x $dockerd_pid $(containerd_pid) $dshims | cut -d' ' -f2-)"
}
sleep 2
memrow idle >"$work/mem.txt"
for i in $(seq "$N"); do
	docker -H "$B" run -d --network none busybox sleep 100000 >/dev/null
	docker -H "$D" run -d --network none busybox sleep 100000 >/dev/null
done
sleep 2
memrow "$N-running" >>"$work/mem.txt"

python3 - "$work" "$N" <<'PY'
import glob, json, statistics, sys
work, n = sys.argv[1], sys.argv[2]
for label, what in (("run", "run --rm busybox true"), ("create", "create + rm"), ("ps", "ps -a, 20 containers")):
    times = {}
    for f in sorted(glob.glob(f"{work}/{label}-*.json")):
        for x in json.load(open(f))["results"]:
            times.setdefault(x["command"], []).extend(x["times"])
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"{what} (ms, median of {len(times['docker'])} runs):")
    for k, v in med.items():
        print(f"  {k:10s} {v:8.1f}")
    d = med["docker"]
    print("  ratios: " + "   ".join(f"docker/{k} = {d / v:.1f}" for k, v in med.items() if k != "docker"))
print("memory (kB: RSS PSS):")
rows = [l.split() for l in open(f"{work}/mem.txt")]
for r in rows:
    print(f"  {r[0]:12s} {r[1]:20s} {r[2]:>7s} {r[3]:>7s}   {r[4]:14s} {r[5]:>7s} {r[6]:>7s}")
for r in rows:
    if r[1] == "berthd":
        b = r
    else:
        print(f"  {r[0]}: (dockerd+containerd)/berthd RSS = {int(r[2]) / int(b[2]):.1f}   with shims PSS = {int(r[6]) / int(b[6]):.1f}")
PY
