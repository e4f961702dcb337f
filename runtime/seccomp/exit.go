package seccomp

import "errors"

// errNoExit refuses a profile under which a process cannot end itself. With
// both exit and exit_group answered by an errno (or a tracer that is not
// there), libc's _exit and Go's runtime retry them forever: the process
// spins at full CPU holding its pipes, and whoever waits for it (start
// reading the exec fifo, a shim waiting for the exit) waits forever too
// (moby/moby#40205). The init is such a process when its execve fails.
var errNoExit = errors.New("the profile denies both exit and exit_group: its processes could never exit (allow one of them, or kill instead of returning an error)")

// checkExit runs the native architecture's part of f for exit and
// exit_group with the exit codes 0 and 1.
func checkExit(f *Filter) error {
	ar, err := archByName(nativeArchName())
	if err != nil {
		return err
	}
	exitNr, ok1 := ar.table.lookup("exit")
	groupNr, ok2 := ar.table.lookup("exit_group")
	if !ok1 || !ok2 {
		return nil
	}
	for _, code := range []uint64{0, 1} {
		if returns(f.verdict(ar, exitNr, code)) && returns(f.verdict(ar, groupNr, code)) {
			return errNoExit
		}
	}
	return nil
}

// returns reports whether a filter's answer lets the syscall return to
// the caller without running it.
func returns(ret uint32) bool {
	switch ret & retActionMask {
	case retErrno, retTrace:
		return true
	}
	return false
}

// verdict interprets f for a syscall of ar with its first argument arg1
// and the others zero. It knows the instructions the compiler emits; any
// other (or a jump out of the program) answers allow, which never refuses
// a profile by mistake.
func (f *Filter) verdict(ar *arch, nr uint32, arg1 uint64) uint32 {
	word := func(off uint32) uint32 {
		switch {
		case off == offNr:
			return nr
		case off == offArch:
			return ar.audit
		case off == offArgs:
			if ar.bigEndian() {
				return uint32(arg1 >> 32)
			}
			return uint32(arg1)
		case off == offArgs+4:
			if ar.bigEndian() {
				return uint32(arg1)
			}
			return uint32(arg1 >> 32)
		}
		return 0
	}
	var acc uint32
	for pc := 0; pc < len(f.prog); pc++ {
		in := f.prog[pc]
		jump := func(cond bool) {
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		}
		switch in.Code {
		case opLdAbsW:
			acc = word(in.K)
		case opAndK:
			acc &= in.K
		case opJeqK:
			jump(acc == in.K)
		case opJgtK:
			jump(acc > in.K)
		case opJgeK:
			jump(acc >= in.K)
		case opJa:
			pc += int(in.K)
		case opRetK:
			return in.K
		default:
			return retAllow
		}
	}
	return retAllow
}
