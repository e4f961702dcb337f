package image

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"berth.dev/berth/errdefs"
)

// ApplyChanges applies docker's --change instructions (the Dockerfile
// instructions import and commit accept: CMD, ENTRYPOINT, ENV, EXPOSE,
// HEALTHCHECK, LABEL, ONBUILD, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR) to a
// run configuration.
//
// As in a Dockerfile, an ENTRYPOINT drops the command inherited from the
// base configuration unless a CMD among the changes sets one.
func ApplyChanges(c *ContainerConfig, changes []string) error {
	cmdSet := false
	for _, ch := range changes {
		ch = strings.TrimSpace(ch)
		if ch == "" {
			continue
		}
		instr, rest, _ := strings.Cut(ch, " ")
		rest = strings.TrimSpace(rest)
		instr = strings.ToUpper(instr)
		if err := applyChange(c, instr, rest); err != nil {
			return errdefs.Invalid("change %q: %v", ch, err)
		}
		switch {
		case instr == "CMD":
			cmdSet = true
		case instr == "ENTRYPOINT" && !cmdSet:
			c.Cmd = nil
		}
	}
	return nil
}

func applyChange(c *ContainerConfig, instr, rest string) error {
	switch instr {
	case "CMD":
		c.Cmd = commandForm(c, rest)
	case "ENTRYPOINT":
		c.Entrypoint = commandForm(c, rest)
	case "SHELL":
		var sh []string
		if err := json.Unmarshal([]byte(rest), &sh); err != nil || len(sh) == 0 {
			return errdefs.Invalid("SHELL takes a JSON array")
		}
		c.Shell = sh
	case "ENV":
		kvs, err := keyValues(rest, true)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			c.Env = setEnv(c.Env, kv[0], kv[1])
		}
	case "LABEL":
		kvs, err := keyValues(rest, false)
		if err != nil {
			return err
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range kvs {
			c.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(rest) {
			port, proto, _ := strings.Cut(p, "/")
			if proto == "" {
				proto = "tcp"
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
				return errdefs.Invalid("invalid port %q", p)
			}
			c.ExposedPorts[port+"/"+proto] = struct{}{}
		}
	case "VOLUME":
		var vols []string
		if strings.HasPrefix(rest, "[") {
			if err := json.Unmarshal([]byte(rest), &vols); err != nil {
				return err
			}
		} else {
			vols = strings.Fields(rest)
		}
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			c.Volumes[v] = struct{}{}
		}
	case "USER":
		c.User = rest
	case "WORKDIR":
		c.WorkingDir = rest
	case "STOPSIGNAL":
		c.StopSignal = rest
	case "ONBUILD":
		c.OnBuild = append(c.OnBuild, rest)
	case "HEALTHCHECK":
		return healthcheck(c, rest)
	default:
		return errdefs.Invalid("%s is not an instruction import or commit accepts", instr)
	}
	if rest == "" && instr != "CMD" && instr != "ENTRYPOINT" {
		return errdefs.Invalid("%s needs an argument", instr)
	}
	return nil
}

// commandForm reads the JSON form ["a","b"] or the shell form.
func commandForm(c *ContainerConfig, rest string) []string {
	var argv []string
	if strings.HasPrefix(rest, "[") && json.Unmarshal([]byte(rest), &argv) == nil {
		return argv
	}
	if rest == "" {
		return nil
	}
	sh := c.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, sh...), rest)
}

// keyValues reads "k=v k2="v 2"" or, where legacy is allowed, "k v".
func keyValues(s string, legacy bool) ([][2]string, error) {
	if !strings.Contains(strings.SplitN(s, " ", 2)[0], "=") {
		k, v, ok := strings.Cut(s, " ")
		if !legacy || !ok {
			return nil, errdefs.Invalid("want key=value")
		}
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for _, w := range splitQuoted(s) {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, errdefs.Invalid("want key=value, got %q", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitQuoted splits on spaces outside double quotes and drops the quotes.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, any := false, false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			any = true
		case ch == '"':
			inQ = !inQ
			any = true
		case ch == ' ' && !inQ:
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteByte(ch)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// healthcheck reads "NONE" or "[--interval=D --timeout=D --start-period=D
// --start-interval=D --retries=N] CMD ...".
func healthcheck(c *ContainerConfig, rest string) error {
	if strings.EqualFold(strings.TrimSpace(rest), "NONE") {
		c.Healthcheck = &HealthConfig{Test: []string{"NONE"}}
		return nil
	}
	h := &HealthConfig{}
	for strings.HasPrefix(rest, "--") {
		var flag string
		flag, rest, _ = strings.Cut(rest, " ")
		rest = strings.TrimSpace(rest)
		name, val, ok := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		if !ok {
			return errdefs.Invalid("HEALTHCHECK flag %q needs =value", flag)
		}
		var err error
		switch name {
		case "interval":
			h.Interval, err = time.ParseDuration(val)
		case "timeout":
			h.Timeout, err = time.ParseDuration(val)
		case "start-period":
			h.StartPeriod, err = time.ParseDuration(val)
		case "start-interval":
			h.StartInterval, err = time.ParseDuration(val)
		case "retries":
			h.Retries, err = strconv.Atoi(val)
		default:
			return errdefs.Invalid("unknown HEALTHCHECK flag --%s", name)
		}
		if err != nil {
			return errdefs.Invalid("HEALTHCHECK --%s: %v", name, err)
		}
	}
	instr, cmd, _ := strings.Cut(rest, " ")
	if !strings.EqualFold(instr, "CMD") || strings.TrimSpace(cmd) == "" {
		return errdefs.Invalid("HEALTHCHECK wants CMD and a command")
	}
	cmd = strings.TrimSpace(cmd)
	var argv []string
	if strings.HasPrefix(cmd, "[") && json.Unmarshal([]byte(cmd), &argv) == nil {
		h.Test = append([]string{"CMD"}, argv...)
	} else {
		h.Test = []string{"CMD-SHELL", cmd}
	}
	c.Healthcheck = h
	return nil
}
