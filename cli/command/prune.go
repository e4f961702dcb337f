package command

import (
	"fmt"

	"berth.dev/berth/cli/format"
)

// printPruned prints a prune's report as docker does: the title and what
// went (when anything did), a blank line, and the space reclaimed.
func (c *CLI) printPruned(title string, deleted []string, reclaimed uint64) {
	if len(deleted) > 0 {
		fmt.Fprintln(c.Out, title)
		for _, d := range deleted {
			fmt.Fprintln(c.Out, d)
		}
		fmt.Fprintln(c.Out)
	}
	fmt.Fprintln(c.Out, "Total reclaimed space:", format.SizeDF(int64(reclaimed)))
}
