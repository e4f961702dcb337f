// Command berth is the berth container engine: CLI, daemon and OCI runtime in one binary.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "berth: not yet")
	os.Exit(1)
}
