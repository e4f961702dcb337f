package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// The docker-credential-helpers protocol: the program
// docker-credential-<name> is run with the action as its argument; "get"
// and "erase" read the server URL on stdin, "store" reads helperCreds as
// JSON, "get" answers helperCreds as JSON and "list" a map of server URL
// to user name. A failing helper exits non-zero with its message on
// stdout.
const (
	helperPrefix = "docker-credential-"
	// notFound is a helper's answer to "get" when it has no credentials.
	notFound = "credentials not found in native keychain"
	// tokenUsername marks an identity token stored as the secret.
	tokenUsername = "<token>"
)

type helperCreds struct {
	ServerURL string
	Username  string
	Secret    string
}

// runHelper runs helper name's action with in on stdin and returns its
// stdout, trimmed; a failure's error is its message.
func runHelper(name, action string, in []byte) (string, error) {
	cmd := exec.Command(helperPrefix+name, action)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	msg := strings.TrimSpace(string(out))
	if err != nil {
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) { // not started: not on PATH, not executable
			return "", fmt.Errorf("credential helper %s%s: %w", helperPrefix, name, err)
		}
		return msg, &helperError{msg: msg, err: err}
	}
	return msg, nil
}

type helperError struct {
	msg string
	err error
}

func (e *helperError) Error() string { return fmt.Sprintf("err: %v, out: `%s`", e.err, e.msg) }

func helperGet(name, server string) (*helperCreds, error) {
	out, err := runHelper(name, "get", []byte(server))
	var he *helperError
	if errors.As(err, &he) && he.msg == notFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("error getting credentials - %w", err) // docker's words
	}
	var c helperCreds
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		return nil, fmt.Errorf("error getting credentials: helper %s%s: %w", helperPrefix, name, err)
	}
	return &c, nil
}

func helperStore(name string, c helperCreds) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if _, err := runHelper(name, "store", b); err != nil {
		return fmt.Errorf("error storing credentials - %w", err)
	}
	return nil
}

func helperErase(name, server string) error {
	if _, err := runHelper(name, "erase", []byte(server)); err != nil {
		return fmt.Errorf("error erasing credentials - %w", err)
	}
	return nil
}

// HelperList is the registries the helper name has credentials for, with
// their user names (its "list").
func HelperList(name string) (map[string]string, error) {
	out, err := runHelper(name, "list", nil)
	if err != nil {
		return nil, fmt.Errorf("error listing credentials - %w", err)
	}
	m := map[string]string{}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return nil, fmt.Errorf("error listing credentials: helper %s%s: %w", helperPrefix, name, err)
	}
	return m, nil
}
