// Package cgroups places container processes in control groups and applies
// OCI resource limits to them, on cgroup v1, v2 and hybrid hosts.
//
// CONTRACT (used by package runtime; keep the exported API stable):
//
//	m, err := cgroups.New(cgroupsPath, id, resources) // resolves paths, creates nothing
//	m.Apply(pid)        // create the cgroup(s); pid > 0 also moves pid in
//	m.Set(resources)    // write limits (also used by `update`)
//	m.Freeze(); m.Thaw(); m.State() // freezer, for pause/resume
//	m.Pids()            // every pid in the cgroup(s), recursively
//	m.Stats()           // for `events --stats`
//	m.Destroy()         // remove the cgroup(s); tolerate already-gone
//	m.Paths()           // subsystem -> absolute dir ("" key for v2 unified)
//	m.IntoCgroupFD()    // an O_PATH fd of the v2 cgroup dir for CLONE_INTO_CGROUP, or -1
//
// A Manager must be reconstructible from a saved State() so a later `berth runtime
// kill/delete/pause` process can act on a container another process created.
package cgroups
