package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// ExecOpts are the options of exec.
type ExecOpts struct {
	Process       *specs.Process
	ConsoleSocket string
	ConsoleConn   *os.File // see CreateOpts.ConsoleConn
	PidFile       string
	PreserveFds   int
	Stdin         io.Reader
	Stdout        io.Writer
	Stderr        io.Writer
}

// Exec starts another process in the running container and returns it once
// it has exec'd (or the reason it could not).
func (c *Container) Exec(o ExecOpts) (*exec.Cmd, error) {
	switch st := c.Status(); st {
	case StatusRunning, StatusCreated:
	case StatusPaused:
		return nil, errdefs.Conflict("container %s is paused: resume it first", c.Saved.ID)
	default:
		return nil, errdefs.Conflict("cannot exec in a %s container", st)
	}
	p := o.Process
	if p == nil || len(p.Args) == 0 {
		return nil, errdefs.Invalid("exec: process args must not be empty")
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if err := checkRlimits(p.Rlimits); err != nil {
		return nil, errdefs.Invalid("exec: %v", err)
	}
	if err := checkCaps(p); err != nil {
		return nil, errdefs.Invalid("exec: %v", err)
	}
	spec, err := c.Spec()
	if err != nil {
		return nil, fmt.Errorf("read container config: %w", err)
	}
	filter, err := c.rt.seccompFilter(spec)
	if err != nil {
		return nil, err
	}
	m, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	exe, err := c.rt.initBinary()
	if err != nil {
		return nil, err
	}
	cfg := &initConfig{ID: c.Saved.ID, Spec: toInitSpec(spec), Process: p, Exec: true, Seccomp: filter}
	files, err := newInitFiles(&cfg.Fds, o.PreserveFds, nil, p.Terminal, o.ConsoleSocket, o.ConsoleConn)
	if err != nil {
		return nil, err
	}
	defer files.close()
	cgfd, cgTasks := -1, []string(nil)
	if m != nil {
		if cgfd, cgTasks, err = cgroupPlacement(m); err != nil {
			return nil, err
		}
		if cgfd >= 0 {
			defer unix.Close(cgfd)
		}
	}
	sp := &spawn{
		exe: exe, args: c.rt.initArgs(), ns: c.Saved.Namespaces, cgroupFD: cgfd, cgroupTasks: cgTasks, extra: files.extra,
		stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr,
	}
	// The namespaces were new for the init; for us they are all joins.
	cmd, err := sp.start()
	if err != nil {
		return nil, err
	}
	files.started()
	fail := func(err error) (*exec.Cmd, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	cfg.HostPid = cmd.Process.Pid
	cfg.State = c.State()
	if err := files.sendConfig(cfg, false, nil); err != nil {
		return fail(fmt.Errorf("send config to exec init: %w", err))
	}
	// The sync socket is close-on-exec: EOF means the process exec'd.
	msg, err := readSync(files.sync)
	if err == nil && msg.Type == "error" {
		return fail(errors.New(msg.Error))
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fail(err)
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, cmd.Process.Pid); err != nil {
			return cmd, err
		}
	}
	return cmd, nil
}
