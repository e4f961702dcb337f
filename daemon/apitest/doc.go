// Package apitest drives the real `berth daemon` binary with the real
// docker CLI and curl: every test starts its own daemon on a temporary data
// root and socket and stops it by pid. It has only tests.
package apitest
