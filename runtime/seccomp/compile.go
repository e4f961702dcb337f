package seccomp

import (
	"errors"
	"fmt"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Return values (linux/seccomp.h).
const (
	retKillProcess uint32 = 0x80000000
	retKillThread  uint32 = 0x00000000
	retTrap        uint32 = 0x00030000
	retErrno       uint32 = 0x00050000
	retUserNotif   uint32 = 0x7fc00000
	retTrace       uint32 = 0x7ff00000
	retLog         uint32 = 0x7ffc0000
	retAllow       uint32 = 0x7fff0000
	retActionMask  uint32 = 0xffff0000
)

// badArchRet is what a syscall from an architecture the filter does not
// list gets. libseccomp kills the thread; we kill the whole process, as the
// kernel documentation advises, so a half-dead process is never left behind.
const badArchRet = retKillProcess

// seccomp_data layout (linux/seccomp.h).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

const maxArgs = 6

var actions = []specs.LinuxSeccompAction{
	specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap,
	specs.ActErrno, specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
}

var operators = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

var flagBits = []struct {
	name specs.LinuxSeccompFlag
	bit  uint32
}{
	{"SECCOMP_FILTER_FLAG_TSYNC", unix.SECCOMP_FILTER_FLAG_TSYNC},
	{specs.LinuxSeccompFlagLog, unix.SECCOMP_FILTER_FLAG_LOG},
	{specs.LinuxSeccompFlagSpecAllow, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
	{specs.LinuxSeccompFlagWaitKillableRecv, flagWaitKillableRecv},
}

// Not in every x/sys version.
const (
	flagTsyncESRCH       = 1 << 4
	flagWaitKillableRecv = 1 << 5
)

// Actions lists the actions Compile accepts (for `features`).
func Actions() []string { return names(actions) }

// Operators lists the argument operators Compile accepts.
func Operators() []string { return names(operators) }

// Flags lists the seccomp flags Compile accepts.
func Flags() []string {
	out := make([]string, len(flagBits))
	for i, f := range flagBits {
		out[i] = string(f.name)
	}
	return out
}

func names[T ~string](l []T) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = string(s)
	}
	return out
}

// actionRet maps an action and its optional errno to a seccomp return value.
// Per the runtime spec an omitted errnoRet means EPERM, and errnoRet on an
// action that carries no data is an error.
func actionRet(act specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errnoRet != nil {
		if act != specs.ActErrno && act != specs.ActTrace {
			return 0, fmt.Errorf("errnoRet is not supported by action %s", act)
		}
		if *errnoRet > 0xffff {
			return 0, fmt.Errorf("errnoRet %d out of range", *errnoRet)
		}
		data = uint32(*errnoRet)
	}
	switch act {
	case specs.ActKill, specs.ActKillThread:
		return retKillThread, nil
	case specs.ActKillProcess:
		return retKillProcess, nil
	case specs.ActTrap:
		return retTrap, nil
	case specs.ActErrno:
		return retErrno | data, nil
	case specs.ActTrace:
		return retTrace | data, nil
	case specs.ActAllow:
		return retAllow, nil
	case specs.ActLog:
		return retLog, nil
	case specs.ActNotify:
		return retUserNotif, nil
	case "":
		return 0, errors.New("missing action")
	}
	return 0, fmt.Errorf("unknown action %q", act)
}

type cond struct {
	off    uint32 // offset of the argument (its low word) in seccomp_data
	op     specs.LinuxSeccompOperator
	v, w   uint64 // value, valueTwo
	bits32 bool   // compare the low word only
}

type rule struct {
	conds []cond // all must hold
	ret   uint32
}

// calls holds what one syscall number does on one architecture: the
// conditional rules in spec order (first match wins) and the action of the
// first unconditional rule, which applies when none matches.
type calls struct {
	conds       []rule
	fallback    uint32
	hasFallback bool
}

type entry struct {
	names []string
	rule  rule // conds carry the arg index in off until placed per arch
}

// block is the code for one AUDIT_ARCH value. x86_64 and x32 share one.
type block struct {
	audit uint32
	archs []*arch
}

type compiler struct {
	a          asm
	defaultRet uint32
	notify     bool
}

func compile(s *specs.LinuxSeccomp) (*Filter, error) {
	if s == nil {
		return nil, errors.New("no seccomp configuration")
	}
	c := &compiler{}
	var err error
	if c.defaultRet, err = actionRet(s.DefaultAction, s.DefaultErrnoRet); err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	if s.DefaultAction == specs.ActNotify {
		// The runtime's own syscalls up to execve would wait for a listener
		// that it has not handed over yet.
		return nil, errors.New("SCMP_ACT_NOTIFY cannot be the default action")
	}
	var flags uint32
	for _, f := range s.Flags {
		ok := false
		for _, fb := range flagBits {
			if fb.name == f {
				flags |= fb.bit
				ok = true
			}
		}
		if !ok {
			return nil, fmt.Errorf("unknown seccomp flag %q", f)
		}
	}

	blocks, err := archBlocks(s.Architectures)
	if err != nil {
		return nil, err
	}
	entries, err := parseSyscalls(s.Syscalls)
	if err != nil {
		return nil, err
	}

	a := &c.a
	a.ld(offArch)
	starts := make([]label, len(blocks))
	for i, b := range blocks {
		starts[i] = a.newLabel()
		a.jmp(opJeqK, b.audit, starts[i], next)
	}
	a.ret(badArchRet)
	for i, b := range blocks {
		a.bind(starts[i])
		c.block(b, entries)
	}
	prog, err := a.link()
	if err != nil {
		return nil, err
	}
	if c.notify && s.ListenerPath == "" {
		return nil, errors.New("SCMP_ACT_NOTIFY requires listenerPath")
	}
	return &Filter{prog: prog, flags: flags, listener: c.notify}, nil
}

// archBlocks returns the native architecture first (libseccomp always
// includes it; it is also the one that matters for speed), then the others.
func archBlocks(names []specs.Arch) ([]*block, error) {
	native := nativeArchName()
	if native == "" {
		return nil, errors.New("seccomp is not supported on this architecture")
	}
	var blocks []*block
	seen := map[specs.Arch]bool{}
	for _, n := range append([]specs.Arch{native}, names...) {
		if seen[n] {
			continue
		}
		seen[n] = true
		ar, err := archByName(n)
		if err != nil {
			return nil, err
		}
		var b *block
		for _, ob := range blocks {
			if ob.audit == ar.audit {
				b = ob
			}
		}
		if b == nil {
			b = &block{audit: ar.audit}
			blocks = append(blocks, b)
		}
		b.archs = append(b.archs, ar)
	}
	return blocks, nil
}

func parseSyscalls(l []specs.LinuxSyscall) ([]entry, error) {
	out := make([]entry, 0, len(l))
	for i, sc := range l {
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("syscalls[%d]: no names", i)
		}
		ret, err := actionRet(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d] (%s): %w", i, sc.Names[0], err)
		}
		e := entry{names: sc.Names, rule: rule{ret: ret}}
		for _, arg := range sc.Args {
			if arg.Index >= maxArgs {
				return nil, fmt.Errorf("syscalls[%d] (%s): argument index %d out of range", i, sc.Names[0], arg.Index)
			}
			known := false
			for _, op := range operators {
				known = known || op == arg.Op
			}
			if !known {
				return nil, fmt.Errorf("syscalls[%d] (%s): unknown operator %q", i, sc.Names[0], arg.Op)
			}
			e.rule.conds = append(e.rule.conds, cond{off: uint32(arg.Index), op: arg.Op, v: arg.Value, w: arg.ValueTwo})
		}
		out = append(out, e)
	}
	return out, nil
}

type leaf struct {
	ret   uint32
	calls *calls // nil: just return ret
}

type interval struct {
	lo uint32 // up to the next interval's lo
	leaf
}

func (c *compiler) block(b *block, entries []entry) {
	// Which ranges of numbers belong to an architecture of this block:
	// on x86_64 the x32 ABI is the upper half. Numbers of an ABI that is
	// not listed get the bad-arch action, as with libseccomp.
	lowRet, highRet := c.defaultRet, c.defaultRet
	if b.audit == unix.AUDIT_ARCH_X86_64 {
		lowRet, highRet = badArchRet, badArchRet
		for _, ar := range b.archs {
			if ar.name == specs.ArchX32 {
				highRet = c.defaultRet
			} else {
				lowRet = c.defaultRet
			}
		}
	}
	base := func(nr uint32) uint32 {
		if nr >= x32SyscallBit {
			return highRet
		}
		return lowRet
	}

	byNr := map[uint32]*calls{}
	for _, e := range entries {
		for _, n := range e.names {
			for _, ar := range b.archs {
				nr, ok := ar.table.lookup(n)
				if !ok {
					continue // not on this arch: docker's profile relies on that
				}
				cs := byNr[nr]
				if cs == nil {
					cs = &calls{}
					byNr[nr] = cs
				}
				if len(e.rule.conds) == 0 {
					if !cs.hasFallback {
						cs.fallback, cs.hasFallback = e.rule.ret, true
					}
					continue
				}
				r := rule{ret: e.rule.ret, conds: make([]cond, len(e.rule.conds))}
				for i, cd := range e.rule.conds {
					cd.off = argOffset(ar, cd.off)
					cd.bits32 = ar.bits32
					r.conds[i] = cd
				}
				cs.conds = append(cs.conds, r)
			}
		}
	}

	nrs := make([]uint32, 0, len(byNr))
	for nr := range byNr {
		nrs = append(nrs, nr)
	}
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })

	var ivs []interval
	add := func(lo uint32, l leaf) {
		if n := len(ivs); n > 0 && ivs[n-1].calls == nil && l.calls == nil && ivs[n-1].ret == l.ret {
			return // same action as the interval before: extend it
		}
		ivs = append(ivs, interval{lo: lo, leaf: l})
	}
	cur := uint64(0) // numbers below cur are covered
	fill := func(upto uint64) {
		for cur < upto {
			end := upto
			if cur < x32SyscallBit && end > x32SyscallBit {
				end = x32SyscallBit
			}
			add(uint32(cur), leaf{ret: base(uint32(cur))})
			cur = end
		}
	}
	for _, nr := range nrs {
		fill(uint64(nr))
		cs := byNr[nr]
		if !cs.hasFallback {
			cs.fallback = base(nr)
		}
		l := leaf{ret: cs.fallback, calls: cs}
		if cs.trivial() {
			l.calls = nil
		}
		add(nr, l)
		cur = uint64(nr) + 1
	}
	fill(1 << 32)

	c.a.ld(offNr)
	c.tree(ivs)
}

// trivial: every rule ends in the fallback action, so the arguments do not matter.
func (cs *calls) trivial() bool {
	for _, r := range cs.conds {
		if r.ret != cs.fallback {
			return false
		}
	}
	return true
}

// tree emits a binary search over the intervals; the syscall number is in A.
func (c *compiler) tree(ivs []interval) {
	if len(ivs) == 1 {
		c.leaf(ivs[0].leaf)
		return
	}
	mid := len(ivs) / 2
	right := c.a.newLabel()
	c.a.jmp(opJgeK, ivs[mid].lo, right, next)
	c.tree(ivs[:mid])
	c.a.bind(right)
	c.tree(ivs[mid:])
}

func (c *compiler) ret(k uint32) {
	if k&retActionMask == retUserNotif {
		c.notify = true
	}
	c.a.ret(k)
}

func (c *compiler) leaf(l leaf) {
	if l.calls != nil {
		rules := l.calls.conds
		for i := 0; i < len(rules); {
			j := i + 1
			if k, ok := eqKey(rules[i]); ok {
				for j < len(rules) {
					if k2, ok := eqKey(rules[j]); !ok || k2 != k {
						break
					}
					j++
				}
			}
			if j-i > 1 {
				c.eqGroup(rules[i:j])
			} else {
				c.rule(rules[i])
			}
			i = j
		}
	}
	c.ret(l.ret)
}

func (c *compiler) rule(r rule) {
	fail := c.a.newLabel()
	for _, cd := range r.conds {
		c.cond(cd, fail)
	}
	c.ret(r.ret)
	c.a.bind(fail)
}

type groupKey struct {
	off    uint32
	bits32 bool
	hi     uint32
}

// eqKey groups rules of one `arg == value` condition on the same argument
// with the same high word, like docker's socket and personality lists.
func eqKey(r rule) (groupKey, bool) {
	if len(r.conds) != 1 || r.conds[0].op != specs.OpEqualTo {
		return groupKey{}, false
	}
	cd := r.conds[0]
	k := groupKey{off: cd.off, bits32: cd.bits32}
	if !cd.bits32 {
		k.hi = uint32(cd.v >> 32)
	}
	return k, true
}

// eqGroup tests the shared high word once, then the low word against each
// value in rule order, so the first matching rule still wins.
func (c *compiler) eqGroup(rs []rule) {
	a := &c.a
	end := a.newLabel()
	cd := rs[0].conds[0]
	if !cd.bits32 {
		a.ld(cd.off ^ 4)
		a.jmp(opJeqK, uint32(cd.v>>32), next, end)
	}
	a.ld(cd.off)
	rets := map[uint32]label{}
	var order []uint32
	for i, r := range rs {
		l, ok := rets[r.ret]
		if !ok {
			l = a.newLabel()
			rets[r.ret] = l
			order = append(order, r.ret)
		}
		jf := next
		if i == len(rs)-1 {
			jf = end
		}
		a.jmp(opJeqK, uint32(r.conds[0].v), l, jf)
	}
	for _, k := range order {
		a.bind(rets[k])
		c.ret(k)
	}
	a.bind(end)
}

// argOffset returns the offset in seccomp_data of the low word of argument
// idx; the high word is at off^4. Arguments are u64 in the CPU's byte order,
// and on a 32-bit architecture the value is in the low word.
func argOffset(ar *arch, idx uint32) uint32 {
	off := offArgs + 8*idx
	if ar.bigEndian() {
		off += 4
	}
	return off
}

// cond emits a test of one argument; it falls through when it holds and
// jumps to fail when not. 64-bit values are compared as high word, then low
// word, unsigned, as libseccomp does; on 32-bit architectures only the low
// word is compared (libseccomp too).
func (c *compiler) cond(cd cond, fail label) {
	a := &c.a
	op, bits32 := cd.op, cd.bits32
	lo, hi := cd.off, cd.off^4
	vlo, vhi := uint32(cd.v), uint32(cd.v>>32)
	if op == specs.OpMaskedEqual {
		word := func(off, mask, datum uint32) {
			if mask == 0 {
				if datum != 0 {
					a.ja(fail)
				}
				return
			}
			a.ld(off)
			if mask != ^uint32(0) {
				a.and(mask)
			}
			a.jmp(opJeqK, datum, next, fail)
		}
		if !bits32 {
			word(hi, vhi, uint32(cd.w>>32))
		}
		word(lo, vlo, uint32(cd.w))
		return
	}
	ok := a.newLabel()
	if !bits32 {
		a.ld(hi)
		switch op {
		case specs.OpEqualTo:
			a.jmp(opJeqK, vhi, next, fail)
		case specs.OpNotEqual:
			a.jmp(opJeqK, vhi, next, ok)
		case specs.OpGreaterThan, specs.OpGreaterEqual:
			a.jmp(opJgtK, vhi, ok, next)
			if vhi != 0 { // hi <= vhi here; with vhi == 0 it is equal
				a.jmp(opJeqK, vhi, next, fail)
			}
		case specs.OpLessThan, specs.OpLessEqual:
			a.jmp(opJgtK, vhi, fail, next)
			if vhi != 0 {
				a.jmp(opJeqK, vhi, next, ok)
			}
		}
	}
	a.ld(lo)
	switch op {
	case specs.OpEqualTo:
		a.jmp(opJeqK, vlo, next, fail)
	case specs.OpNotEqual:
		a.jmp(opJeqK, vlo, fail, next)
	case specs.OpGreaterThan:
		a.jmp(opJgtK, vlo, next, fail)
	case specs.OpGreaterEqual:
		a.jmp(opJgeK, vlo, next, fail)
	case specs.OpLessThan:
		a.jmp(opJgeK, vlo, fail, next)
	case specs.OpLessEqual:
		a.jmp(opJgtK, vlo, fail, next)
	}
	a.bind(ok)
}
