// Command applybench times archive.Apply of a layer in alternating rounds
// of sequential and parallel extraction, each into a fresh directory after
// the previous one's tree was removed and the file system synced (the state
// of a pull after an rmi: ext4 then allocates inodes slowly; -keep removes
// them only at the end).
//
//	go run ./hack/applybench -layer debian.tar.gz -rounds 5 -modes 0,2,4
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"berth.dev/berth/archive"
)

func main() {
	layer := flag.String("layer", "", "layer tar (any compression)")
	base := flag.String("dir", "/var/tmp/applybench", "where the trees go")
	rounds := flag.Int("rounds", 5, "rounds")
	modes := flag.String("modes", "0,4", "Parallel values, alternated in each round")
	keep := flag.Bool("keep", false, "remove the trees only at the end (ext4 without recently freed inodes)")
	flag.Parse()
	var ps []int
	for _, m := range strings.Split(*modes, ",") {
		n, err := strconv.Atoi(m)
		if err != nil {
			log.Fatal(err)
		}
		ps = append(ps, n)
	}
	if err := os.MkdirAll(*base, 0o755); err != nil {
		log.Fatal(err)
	}
	times := make([][]time.Duration, len(ps))
	prev := ""
	var kept []string
	for r := 0; r < *rounds; r++ {
		for i, p := range ps {
			if prev != "" && *keep {
				kept = append(kept, prev)
			} else if prev != "" {
				if err := os.RemoveAll(prev); err != nil {
					log.Fatal(err)
				}
			}
			exec.Command("sync").Run()
			root := filepath.Join(*base, fmt.Sprintf("r%d-p%d", r, p))
			if err := os.Mkdir(root, 0o755); err != nil {
				log.Fatal(err)
			}
			prev = root
			f, err := os.Open(*layer)
			if err != nil {
				log.Fatal(err)
			}
			start := time.Now()
			res, err := archive.Apply(context.Background(), root, f, archive.ApplyOptions{Parallel: p})
			d := time.Since(start)
			f.Close()
			if err != nil {
				log.Fatal(err)
			}
			times[i] = append(times[i], d)
			la, _ := os.ReadFile("/proc/loadavg")
			fmt.Printf("round %d parallel=%d %.3fs entries=%d load %s", r, p, d.Seconds(), res.Entries, la)
		}
	}
	for _, d := range append(kept, prev) {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	for i, p := range ps {
		t := slices.Clone(times[i])
		slices.Sort(t)
		fmt.Printf("parallel=%d median %.3fs min %.3fs max %.3fs all %v\n", p, t[len(t)/2].Seconds(), t[0].Seconds(), t[len(t)-1].Seconds(), times[i])
	}
}
