package seccomp

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// maxInsns is BPF_MAXINSNS: the kernel rejects longer programs.
const maxInsns = 4096

// Classic BPF opcodes used here (linux/filter.h).
const (
	opLdAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAndK   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJgtK   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJgeK   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opJa     = unix.BPF_JMP | unix.BPF_JA
	opRetK   = unix.BPF_RET | unix.BPF_K
)

// label names a position in the program. Every jump goes forward; a label is
// bound before the instruction that follows it.
type label int

// next is the fall-through target of a conditional jump.
const next label = -1

type insn struct {
	code   uint16
	k      uint32
	jt, jf label // conditional jumps; jt is the target of opJa
}

// asm collects instructions with symbolic jump targets. link resolves them,
// routing targets beyond the 8-bit reach of jt/jf through `ja` trampolines.
type asm struct {
	insns  []insn
	labels []int // label → index of the instruction it precedes; -1 unbound
}

func (a *asm) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

func (a *asm) bind(l label) { a.labels[l] = len(a.insns) }

func (a *asm) ld(off uint32) { a.insns = append(a.insns, insn{code: opLdAbsW, k: off}) }
func (a *asm) and(k uint32)  { a.insns = append(a.insns, insn{code: opAndK, k: k}) }
func (a *asm) ret(k uint32)  { a.insns = append(a.insns, insn{code: opRetK, k: k}) }
func (a *asm) ja(l label)    { a.insns = append(a.insns, insn{code: opJa, jt: l}) }

func (a *asm) jmp(code uint16, k uint32, jt, jf label) {
	a.insns = append(a.insns, insn{code: code, k: k, jt: jt, jf: jf})
}

func (a *asm) target(i int, l label) int {
	if l == next {
		return i + 1
	}
	return a.labels[l]
}

// link lays the program out. Conditional jumps whose target is out of reach
// get a trampoline (`ja target`) right after them; adding trampolines only
// lengthens other jumps, so iterating to a fixed point terminates.
func (a *asm) link() ([]unix.SockFilter, error) {
	n := len(a.insns)
	for i, in := range a.insns {
		if in.code&0x07 != unix.BPF_JMP {
			continue
		}
		for _, l := range []label{in.jt, in.jf} {
			if in.code == opJa && l == in.jf {
				continue
			}
			if t := a.target(i, l); t <= i || t >= n {
				return nil, fmt.Errorf("bpf: bad jump at %d", i)
			}
		}
	}
	far := make([]uint8, n) // bit 0: jt via trampoline, bit 1: jf via trampoline
	pos := make([]int, n+1)
	for {
		p := 0
		for i := 0; i < n; i++ {
			pos[i] = p
			p += 1 + int(far[i]&1) + int(far[i]>>1)
		}
		pos[n] = p
		changed := false
		for i, in := range a.insns {
			if in.code&0x07 != unix.BPF_JMP || in.code == opJa {
				continue
			}
			if far[i]&1 == 0 && pos[a.target(i, in.jt)]-pos[i]-1 > 255 {
				far[i] |= 1
				changed = true
			}
			if far[i]&2 == 0 && pos[a.target(i, in.jf)]-pos[i]-1 > 255 {
				far[i] |= 2
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	if pos[n] > maxInsns {
		return nil, fmt.Errorf("filter needs %d instructions, more than the kernel's limit of %d", pos[n], maxInsns)
	}
	if n == 0 {
		return nil, errors.New("bpf: empty program")
	}
	out := make([]unix.SockFilter, 0, pos[n])
	for i, in := range a.insns {
		switch {
		case in.code == opJa:
			out = append(out, unix.SockFilter{Code: in.code, K: uint32(pos[a.target(i, in.jt)] - pos[i] - 1)})
		case in.code&0x07 == unix.BPF_JMP:
			f := unix.SockFilter{Code: in.code, K: in.k}
			tramp := 0
			if far[i]&1 != 0 {
				f.Jt = uint8(tramp)
				tramp++
			} else {
				f.Jt = uint8(pos[a.target(i, in.jt)] - pos[i] - 1)
			}
			if far[i]&2 != 0 {
				f.Jf = uint8(tramp)
			} else {
				f.Jf = uint8(pos[a.target(i, in.jf)] - pos[i] - 1)
			}
			out = append(out, f)
			base := pos[i] + 1
			if far[i]&1 != 0 {
				out = append(out, unix.SockFilter{Code: opJa, K: uint32(pos[a.target(i, in.jt)] - base - 1)})
				base++
			}
			if far[i]&2 != 0 {
				out = append(out, unix.SockFilter{Code: opJa, K: uint32(pos[a.target(i, in.jf)] - base - 1)})
			}
		default:
			out = append(out, unix.SockFilter{Code: in.code, K: in.k})
		}
	}
	if last := out[len(out)-1]; last.Code != opRetK {
		return nil, errors.New("bpf: program does not end with a return")
	}
	return out, nil
}
