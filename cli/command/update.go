package command

import (
	"errors"
	"fmt"
	"strings"

	"berth.dev/berth/client"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

func newUpdateCommand(c *CLI) *cobra.Command {
	var r container.Resources
	var memory, reservation memBytes
	var swap memSwapBytes
	var cpus nanoCPUs
	var pids int64
	var restart string
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().NFlag() == 0 {
				return errors.New("you must provide one or more flags when using this command")
			}
			r.Memory, r.MemoryReservation, r.MemorySwap, r.NanoCPUs = int64(memory), int64(reservation), int64(swap), int64(cpus)
			opts := client.ContainerUpdateOptions{Resources: &r}
			if cmd.Flags().Changed("pids-limit") {
				r.PidsLimit = &pids
			}
			if cmd.Flags().Changed("restart") {
				p, err := parseRestartPolicy(restart)
				if err != nil {
					return err
				}
				opts.RestartPolicy = &p
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var warnings []string
			err = c.each(args, func(n string) error {
				res, err := cl.ContainerUpdate(cmd.Context(), n, opts)
				warnings = append(warnings, res.Warnings...)
				return err
			})
			if len(warnings) > 0 {
				fmt.Fprintln(c.Out, strings.Join(warnings, "\n"))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.Uint16Var(&r.BlkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	f.Int64Var(&r.CPUPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	f.Int64Var(&r.CPUQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	f.Int64Var(&r.CPURealtimePeriod, "cpu-rt-period", 0, "Limit the CPU real-time period in microseconds")
	f.Int64Var(&r.CPURealtimeRuntime, "cpu-rt-runtime", 0, "Limit the CPU real-time runtime in microseconds")
	f.Int64VarP(&r.CPUShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Var(&cpus, "cpus", "Number of CPUs")
	f.StringVar(&r.CpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&r.CpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	f.VarP(&memory, "memory", "m", "Memory limit")
	f.Var(&reservation, "memory-reservation", "Memory soft limit")
	f.Var(&swap, "memory-swap", `Swap limit equal to memory plus swap: -1 to enable unlimited swap`)
	f.Int64Var(&pids, "pids-limit", 0, `Tune container pids limit (set -1 for unlimited)`)
	f.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	return cmd
}
