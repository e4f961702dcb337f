// Package leakcheck finds host resources that tests leave behind: mounts,
// cgroup directories, network namespaces, network links, nftables tables
// and processes.
//
// A State is a snapshot of the host. Take one before the tests run and call
// Check after: anything present now that was not present then is a leak.
// Nothing is ever cleaned up or killed here; leaks are only reported.
//
// In a package's TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
//
// or by hand:
//
//	snap, err := leakcheck.Snapshot()
//	code := m.Run()
//	if err := snap.Check(); err != nil { fmt.Fprintln(os.Stderr, err); code = 1 }
//
// CI uses the command internal/leakcheck/cmd/leakcheck, which saves the State
// to a file between `snapshot` and `check`.
package leakcheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
)

// Mode says how processes are judged.
type Mode string

const (
	// InProcess is for a check made by a test binary about itself (TestMain).
	// A new process is a leak when it descends from the checking process, or
	// when it looks like berth's (see Host) and is not a descendant of the
	// checker's parent: under `go test -p N`, the go command's other children
	// (compilers, other packages' test binaries) are not ours to judge.
	InProcess Mode = "in-process"
	// Host is for a check of the whole machine (CI, around `go test ./...`).
	// A new process is a leak when its parent is PID 1 (orphaned or
	// daemonised during the suite), its executable is the berth binary or a
	// go test binary (*.test), or its command line mentions "berth".
	Host Mode = "host"
)

// DefaultGrace is how long Check keeps looking before it reports a leak,
// so that processes being reaped and lazy teardown can finish.
const DefaultGrace = 3 * time.Second

// Kinds of leaks.
const (
	KindMount   = "mount"
	KindCgroup  = "cgroup"
	KindNetns   = "netns"
	KindLink    = "link"
	KindNft     = "nftables"
	KindProcess = "process"
)

// Proc is one process in a State.
type Proc struct {
	PID     int    `json:"pid"`
	PPID    int    `json:"ppid"`
	Start   uint64 `json:"start"` // start time, clock ticks after boot
	State   string `json:"state"`
	Exe     string `json:"exe,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
	kthread bool
}

func (p Proc) key() string { return strconv.Itoa(p.PID) + "@" + strconv.FormatUint(p.Start, 10) }

// State is a snapshot of the host's resources.
type State struct {
	TakenAt     time.Time `json:"taken_at"`
	Mode        Mode      `json:"mode"`
	BerthBinary string    `json:"berth_binary,omitempty"`
	// Mounts holds one "MOUNTPOINT FSTYPE SOURCE root=ROOT" per line of
	// /proc/self/mountinfo (a multiset: stacked mounts repeat).
	Mounts []string `json:"mounts"`
	// Cgroups holds every directory of every cgroup hierarchy mounted at or
	// under /sys/fs/cgroup (v1 controllers, named hierarchies, unified).
	Cgroups []string `json:"cgroups"`
	// Netns holds the names `ip netns list` shows (/run/netns) and nsfs
	// mounts of network namespaces.
	Netns []string `json:"netns"`
	// Links holds the network interfaces of this network namespace.
	Links []string `json:"links"`
	// NftTables holds "FAMILY NAME" for the nftables tables of this
	// network namespace, of every family; none when nftables cannot be
	// read (no nf_tables, no CAP_NET_ADMIN).
	NftTables []string `json:"nft_tables,omitempty"`
	Procs     []Proc   `json:"procs"`

	// Ignore drops leaks whose String() matches, for known host noise.
	Ignore *regexp.Regexp `json:"-"`
	// Grace is how long Check waits for leaks to go away; 0 means
	// DefaultGrace, negative means do not wait.
	Grace time.Duration `json:"-"`
}

// Options for Take.
type Options struct {
	Mode Mode
	// BerthBinary is the berth executable whose processes count as leaks;
	// empty means $BERTH_BINARY.
	BerthBinary string
}

// Snapshot takes an InProcess State, for TestMain.
func Snapshot() (*State, error) {
	return Take(Options{Mode: InProcess})
}

// Take snapshots the host now.
func Take(o Options) (*State, error) {
	if o.Mode == "" {
		o.Mode = InProcess
	}
	if o.BerthBinary == "" {
		o.BerthBinary = os.Getenv("BERTH_BINARY")
	}
	if o.BerthBinary != "" {
		if abs, err := filepath.Abs(o.BerthBinary); err == nil {
			o.BerthBinary = abs
		}
	}
	s := &State{TakenAt: time.Now(), Mode: o.Mode, BerthBinary: o.BerthBinary}
	if err := s.collect(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *State) collect() error {
	mounts, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if m.fstype == "nsfs" && strings.HasPrefix(m.root, "net:") {
			s.Netns = append(s.Netns, "nsfs "+m.mountpoint+" "+m.root)
			continue
		}
		s.Mounts = append(s.Mounts, m.String())
	}
	s.Cgroups = cgroupDirs(mounts)
	for _, dir := range []string{"/run/netns", "/var/run/netns"} {
		if dir == "/var/run/netns" {
			if r, err := filepath.EvalSymlinks("/var/run"); err == nil && r == "/run" {
				continue // the same directory
			}
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			s.Netns = append(s.Netns, filepath.Join(dir, e.Name()))
		}
	}
	if ents, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, e := range ents {
			s.Links = append(s.Links, e.Name())
		}
	}
	s.NftTables = nftTables()
	s.Procs, err = readProcs()
	if err != nil {
		return err
	}
	sort.Strings(s.NftTables)
	sort.Strings(s.Mounts)
	sort.Strings(s.Cgroups)
	sort.Strings(s.Netns)
	sort.Strings(s.Links)
	return nil
}

// Save writes s as JSON to file.
func (s *State) Save(file string) error {
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

// Load reads a State that Save wrote.
func Load(file string) (*State, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &s, nil
}

// Leak is one resource present now that was not in the snapshot.
type Leak struct {
	Kind   string `json:"kind"`
	What   string `json:"what"`
	Detail string `json:"detail,omitempty"`
}

func (l Leak) String() string {
	if l.Detail != "" {
		return l.Kind + ": " + l.What + " (" + l.Detail + ")"
	}
	return l.Kind + ": " + l.What
}

// Error is what Check returns when something leaked.
type Error struct {
	Leaks []Leak
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "leakcheck: %d leaked resource(s):", len(e.Leaks))
	for _, l := range e.Leaks {
		b.WriteString("\n  " + l.String())
	}
	return b.String()
}

// Check compares the host now with s. It returns nil when nothing new is
// left, or an *Error listing every leak. It looks again for up to s.Grace
// before it reports, so that leaks must persist to count.
func (s *State) Check() error {
	grace := s.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	deadline := time.Now().Add(grace)
	for {
		leaks, err := s.Leaks()
		if err != nil {
			return err
		}
		if len(leaks) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return &Error{Leaks: leaks}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Leaks takes a fresh State and returns what is new in it, once, without
// waiting.
func (s *State) Leaks() ([]Leak, error) {
	now := &State{Mode: s.Mode, BerthBinary: s.BerthBinary}
	if err := now.collect(); err != nil {
		return nil, err
	}
	leaks := s.Diff(now)
	if s.Ignore != nil {
		kept := leaks[:0]
		for _, l := range leaks {
			if !s.Ignore.MatchString(l.String()) {
				kept = append(kept, l)
			}
		}
		leaks = kept
	}
	return leaks, nil
}

// Vanished lists resources in the snapshot that are gone now (mounts, cgroup
// directories, links, nftables tables). That is not a leak, but a test that removes the
// host's own resources is worth knowing about; the command prints them as
// warnings.
func (s *State) Vanished() ([]Leak, error) {
	now := &State{}
	if err := now.collect(); err != nil {
		return nil, err
	}
	var out []Leak
	for _, m := range newItems(now.Mounts, s.Mounts) {
		out = append(out, Leak{Kind: KindMount, What: m})
	}
	for _, c := range newItems(now.Cgroups, s.Cgroups) {
		out = append(out, Leak{Kind: KindCgroup, What: c})
	}
	for _, l := range newItems(now.Links, s.Links) {
		out = append(out, Leak{Kind: KindLink, What: l})
	}
	for _, t := range newItems(now.NftTables, s.NftTables) {
		out = append(out, Leak{Kind: KindNft, What: "table " + t})
	}
	return out, nil
}

// hostMountIgnored are mounts that appear once per boot as a side effect of
// ordinary tools and are not leaks: `ip netns add` makes /run/netns a shared
// bind mount of itself and leaves it there after `ip netns delete`.
func hostMountIgnored(m string) bool {
	mp, _, _ := strings.Cut(m, " ")
	return mp == "/run/netns" || mp == "/var/run/netns"
}

// Diff returns what is in now and not in s.
func (s *State) Diff(now *State) []Leak {
	var leaks []Leak
	for _, m := range newItems(s.Mounts, now.Mounts) {
		if hostMountIgnored(m) {
			continue
		}
		leaks = append(leaks, Leak{Kind: KindMount, What: m})
	}
	for _, c := range newItems(s.Cgroups, now.Cgroups) {
		leaks = append(leaks, Leak{Kind: KindCgroup, What: c})
	}
	for _, n := range newItems(s.Netns, now.Netns) {
		leaks = append(leaks, Leak{Kind: KindNetns, What: n})
	}
	for _, l := range newItems(s.Links, now.Links) {
		leaks = append(leaks, Leak{Kind: KindLink, What: l, Detail: linkDetail(l)})
	}
	for _, t := range newItems(s.NftTables, now.NftTables) {
		leaks = append(leaks, Leak{Kind: KindNft, What: "table " + t})
	}
	leaks = append(leaks, s.procLeaks(now.Procs)...)
	return leaks
}

// newItems returns the items of after that are not in before, counting
// duplicates.
func newItems(before, after []string) []string {
	count := make(map[string]int, len(before))
	for _, b := range before {
		count[b]++
	}
	var out []string
	for _, a := range after {
		if count[a] > 0 {
			count[a]--
			continue
		}
		out = append(out, a)
	}
	return out
}

func (s *State) procLeaks(now []Proc) []Leak {
	old := make(map[string]bool, len(s.Procs))
	for _, p := range s.Procs {
		old[p.key()] = true
	}
	byPID := make(map[int]Proc, len(now))
	for _, p := range now {
		byPID[p.PID] = p
	}
	self := os.Getpid()
	ancestors := map[int]bool{}
	for pid := self; pid > 0 && !ancestors[pid]; pid = byPID[pid].PPID {
		ancestors[pid] = true
		if _, ok := byPID[pid]; !ok {
			break
		}
	}
	descends := func(p Proc, root int) bool {
		seen := map[int]bool{}
		for pid := p.PPID; pid > 0 && !seen[pid]; pid = byPID[pid].PPID {
			if pid == root {
				return true
			}
			seen[pid] = true
			if _, ok := byPID[pid]; !ok {
				return false
			}
		}
		return false
	}
	parent := byPID[self].PPID
	var leaks []Leak
	for _, p := range now {
		if old[p.key()] || ancestors[p.PID] || p.kthread || p.State == "Z" || p.State == "X" {
			continue
		}
		var why string
		switch s.Mode {
		case Host:
			switch {
			case s.looksLikeOurs(p):
				why = s.whyOurs(p)
			case p.PPID == 1:
				why = "child of PID 1 started during the suite"
			}
		default:
			switch {
			case descends(p, self):
				why = "child of the test process"
			case s.looksLikeOurs(p) && (parent <= 1 || !descends(p, parent)):
				why = s.whyOurs(p)
			}
		}
		if why == "" {
			continue
		}
		leaks = append(leaks, Leak{
			Kind:   KindProcess,
			What:   fmt.Sprintf("pid %d ppid %d %s", p.PID, p.PPID, firstNonEmpty(p.Cmdline, p.Exe)),
			Detail: why + "; exe " + firstNonEmpty(p.Exe, "?"),
		})
	}
	return leaks
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *State) looksLikeOurs(p Proc) bool { return s.whyOurs(p) != "" }

func (s *State) whyOurs(p Proc) string {
	exe := strings.TrimSuffix(p.Exe, " (deleted)")
	switch {
	case s.BerthBinary != "" && exe == s.BerthBinary:
		return "runs the berth binary"
	case filepath.Base(exe) == "berth":
		return "runs a berth binary"
	case strings.HasSuffix(exe, ".test"):
		return "runs a go test binary"
	case strings.Contains(p.Cmdline, "berth"):
		return `command line mentions "berth"`
	}
	return ""
}

// mount is one line of mountinfo.
type mount struct {
	mountpoint, fstype, source, root string
}

func (m mount) String() string {
	return m.mountpoint + " " + m.fstype + " " + m.source + " root=" + m.root
}

func readMountinfo(file string) ([]mount, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseMountinfo(b)
}

func parseMountinfo(b []byte) ([]mount, error) {
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		pre, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 2 {
			return nil, fmt.Errorf("mountinfo: bad line %q", line)
		}
		out = append(out, mount{
			root:       unescape(f[3]),
			mountpoint: unescape(f[4]),
			fstype:     g[0],
			source:     unescape(g[1]),
		})
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func cgroupDirs(mounts []mount) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range mounts {
		if m.fstype != "cgroup" && m.fstype != "cgroup2" {
			continue
		}
		if m.mountpoint != "/sys/fs/cgroup" && !strings.HasPrefix(m.mountpoint, "/sys/fs/cgroup/") {
			continue
		}
		if seen[m.mountpoint] {
			continue
		}
		seen[m.mountpoint] = true
		_ = filepath.WalkDir(m.mountpoint, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if path == m.mountpoint {
					return err
				}
				return nil // a directory removed while we walk
			}
			if d.IsDir() && path != m.mountpoint {
				out = append(out, path)
			}
			return nil
		})
	}
	return out
}

func linkDetail(name string) string {
	var kind string
	if _, err := os.Stat(filepath.Join("/sys/class/net", name, "bridge")); err == nil {
		kind = "bridge"
	}
	if ip, err := exec.LookPath("ip"); err == nil {
		if out, err := exec.Command(ip, "-o", "-d", "link", "show", "dev", name).Output(); err == nil {
			line := strings.TrimSpace(string(out))
			if len(line) > 300 {
				line = line[:300] + "..."
			}
			return line
		}
	}
	return kind
}

// nftFamilies names the nftables table families as nft(8) does.
var nftFamilies = map[nftables.TableFamily]string{
	nftables.TableFamilyINet:   "inet",
	nftables.TableFamilyIPv4:   "ip",
	nftables.TableFamilyIPv6:   "ip6",
	nftables.TableFamilyARP:    "arp",
	nftables.TableFamilyNetdev: "netdev",
	nftables.TableFamilyBridge: "bridge",
}

// nftTables lists this network namespace's nftables tables, of every
// family, as "FAMILY NAME".
func nftTables() []string {
	c, err := nftables.New()
	if err != nil {
		return nil
	}
	ts, err := c.ListTables()
	if err != nil {
		return nil // no nf_tables, or not allowed: nothing to compare
	}
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		fam, ok := nftFamilies[t.Family]
		if !ok {
			fam = strconv.Itoa(int(t.Family))
		}
		out = append(out, fam+" "+t.Name)
	}
	return out
}

const pfKthread = 0x00200000

func readProcs() ([]Proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := readProc(pid)
		if err != nil {
			continue // exited while we looked
		}
		out = append(out, p)
	}
	return out, nil
}

func readProc(pid int) (Proc, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return Proc{}, err
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return Proc{}, errors.New("bad stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 20 {
		return Proc{}, errors.New("short stat")
	}
	ppid, _ := strconv.Atoi(f[1])
	flags, _ := strconv.ParseUint(f[6], 10, 64)
	start, _ := strconv.ParseUint(f[19], 10, 64)
	p := Proc{PID: pid, PPID: ppid, Start: start, State: f[0]}
	p.kthread = flags&pfKthread != 0 || pid == 2 || ppid == 2
	if p.kthread {
		return p, nil
	}
	p.Exe, _ = os.Readlink(dir + "/exe")
	if cmd, err := os.ReadFile(dir + "/cmdline"); err == nil {
		p.Cmdline = strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
		if len(p.Cmdline) > 500 {
			p.Cmdline = p.Cmdline[:500] + "..."
		}
	}
	return p, nil
}

// Summary is a one-line description of s.
func (s *State) Summary() string {
	return fmt.Sprintf("%d mounts, %d cgroup dirs, %d netns, %d links, %d nftables tables, %d processes",
		len(s.Mounts), len(s.Cgroups), len(s.Netns), len(s.Links), len(s.NftTables), len(s.Procs))
}

// Runner is what *testing.M provides.
type Runner interface{ Run() int }

// Main snapshots the host, runs the tests and checks for leaks; it exits
// with the tests' code, or 1 when the tests passed but something leaked.
// Use it as TestMain: func TestMain(m *testing.M) { leakcheck.Main(m) }.
// Set BERTH_LEAKCHECK=0 to turn the check off.
func Main(m Runner) {
	if os.Getenv("BERTH_LEAKCHECK") == "0" {
		os.Exit(m.Run())
	}
	snap, err := Snapshot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "leakcheck: snapshot:", err)
		os.Exit(m.Run())
	}
	// LEAKCHECK_IGNORE, as for the command: known noise of a shared host.
	if re := os.Getenv("LEAKCHECK_IGNORE"); re != "" {
		if snap.Ignore, err = regexp.Compile(re); err != nil {
			fmt.Fprintln(os.Stderr, "leakcheck: LEAKCHECK_IGNORE:", err)
			os.Exit(2)
		}
	}
	code := m.Run()
	if err := snap.Check(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
