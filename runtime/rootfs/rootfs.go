// Package rootfs builds a container's root file system inside its new mount
// namespace: spec mounts, devices, propagation, pivot_root, masked and
// read-only paths. Mount destinations are resolved inside the root so a
// hostile rootfs (symlinks) cannot redirect a mount outside it.
//
// CONTRACT (called by the container init, package runtime, in this order):
//
//	rootfs.Prepare(spec, opts)  // in the new mount ns, before pivot: propagation, root bind, mounts, /dev
//	// ... init runs createContainer hooks here (spec: before pivot_root) ...
//	rootfs.Pivot(spec.Root.Path, opts.NoPivot)  // pivot_root, or MS_MOVE+chroot fallback
//	rootfs.Finalize(spec)       // after pivot: masked paths, readonly paths, readonly root
package rootfs
