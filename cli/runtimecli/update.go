package runtimecli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

// updateCmd is runc's update with its -r form: the new limits as the OCI
// spec's linux.resources JSON, from a file or "-" for stdin.
func (g *globals) updateCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "update -r <file|-> <container-id>",
		Short: "Update a running container's resource limits",
		Args:  exactArgs(1, "<container-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return fmt.Errorf("update: -r is required (the only form berth takes)")
			}
			var in io.Reader = cmd.InOrStdin()
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			var r specs.LinuxResources
			if err := json.NewDecoder(in).Decode(&r); err != nil {
				return fmt.Errorf("decode resources: %w", err)
			}
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			return c.Update(&r)
		},
	}
	cmd.Flags().StringVarP(&file, "resources", "r", "", "path to a file with the linux.resources JSON, or - for stdin")
	return cmd
}
