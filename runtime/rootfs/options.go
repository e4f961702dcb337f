package rootfs

import (
	"strings"

	"golang.org/x/sys/unix"
)

// mountOpts is a spec mount's option list sorted into what the kernel takes.
type mountOpts struct {
	flags uintptr // MS_* flags to set
	clear uintptr // MS_* flags explicitly cleared (rw, suid, dev, ...)
	// attrSet/attrClr mirror flags/clear as MOUNT_ATTR_* for mount_setattr,
	// used on bind mounts so flags not named in the spec (locked ones in a
	// user namespace) are left alone.
	attrSet, attrClr uint64
	recSet, recClr   uint64    // rro, rnosuid, ...: mount_setattr AT_RECURSIVE
	prop             []uintptr // propagation changes, applied in order
	data             []string  // everything else: file system data
	tmpcopyup        bool
	idmap, ridmap    bool
}

type flagOpt struct {
	clear bool
	flag  uintptr
	attr  uint64 // MOUNT_ATTR_* equivalent, 0 if none
}

// atime modes share one field in mount_setattr; atimeAttr marks them.
const atimeAttr = 1 << 63

var flagOpts = map[string]flagOpt{
	"ro":            {false, unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
	"rw":            {true, unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
	"nosuid":        {false, unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
	"suid":          {true, unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
	"nodev":         {false, unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
	"dev":           {true, unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
	"noexec":        {false, unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
	"exec":          {true, unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
	"sync":          {false, unix.MS_SYNCHRONOUS, 0},
	"async":         {true, unix.MS_SYNCHRONOUS, 0},
	"dirsync":       {false, unix.MS_DIRSYNC, 0},
	"remount":       {false, unix.MS_REMOUNT, 0},
	"mand":          {false, unix.MS_MANDLOCK, 0},
	"nomand":        {true, unix.MS_MANDLOCK, 0},
	"atime":         {true, unix.MS_NOATIME, 0},
	"noatime":       {false, unix.MS_NOATIME, atimeAttr | unix.MOUNT_ATTR_NOATIME},
	"diratime":      {true, unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
	"nodiratime":    {false, unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
	"bind":          {false, unix.MS_BIND, 0},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC, 0},
	"relatime":      {false, unix.MS_RELATIME, atimeAttr | unix.MOUNT_ATTR_RELATIME},
	"norelatime":    {true, unix.MS_RELATIME, 0},
	"strictatime":   {false, unix.MS_STRICTATIME, atimeAttr | unix.MOUNT_ATTR_STRICTATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME, 0},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW, unix.MOUNT_ATTR_NOSYMFOLLOW},
	"symfollow":     {true, unix.MS_NOSYMFOLLOW, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

var propOpts = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// recOpts are the recursive mount attributes ("rro", ...) of runtime-spec
// 1.1, applied with mount_setattr(AT_RECURSIVE).
var recOpts = map[string]flagOpt{
	"rro":            {false, 0, unix.MOUNT_ATTR_RDONLY},
	"rrw":            {true, 0, unix.MOUNT_ATTR_RDONLY},
	"rnosuid":        {false, 0, unix.MOUNT_ATTR_NOSUID},
	"rsuid":          {true, 0, unix.MOUNT_ATTR_NOSUID},
	"rnodev":         {false, 0, unix.MOUNT_ATTR_NODEV},
	"rdev":           {true, 0, unix.MOUNT_ATTR_NODEV},
	"rnoexec":        {false, 0, unix.MOUNT_ATTR_NOEXEC},
	"rexec":          {true, 0, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":    {false, 0, unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":      {true, 0, unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime":      {false, 0, atimeAttr | unix.MOUNT_ATTR_RELATIME},
	"rnorelatime":    {true, 0, atimeAttr | unix.MOUNT_ATTR_RELATIME},
	"rnoatime":       {false, 0, atimeAttr | unix.MOUNT_ATTR_NOATIME},
	"ratime":         {true, 0, atimeAttr | unix.MOUNT_ATTR_NOATIME},
	"rstrictatime":   {false, 0, atimeAttr | unix.MOUNT_ATTR_STRICTATIME},
	"rnostrictatime": {true, 0, atimeAttr | unix.MOUNT_ATTR_STRICTATIME},
	"rnosymfollow":   {false, 0, unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":     {true, 0, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

func parseOptions(options []string) mountOpts {
	var o mountOpts
	for _, opt := range options {
		if f, ok := flagOpts[opt]; ok {
			if f.clear {
				o.flags &^= f.flag
				o.clear |= f.flag
				if f.attr != 0 && f.attr&atimeAttr == 0 {
					o.attrSet &^= f.attr
					o.attrClr |= f.attr
				}
			} else {
				o.flags |= f.flag
				o.clear &^= f.flag
				if f.attr&atimeAttr != 0 {
					// One atime mode at a time: the last one wins.
					o.attrSet = o.attrSet&^unix.MOUNT_ATTR__ATIME | f.attr&^atimeAttr
					o.attrClr |= unix.MOUNT_ATTR__ATIME
				} else if f.attr != 0 {
					o.attrSet |= f.attr
					o.attrClr &^= f.attr
				}
			}
			continue
		}
		if p, ok := propOpts[opt]; ok {
			o.prop = append(o.prop, p)
			continue
		}
		if f, ok := recOpts[opt]; ok {
			a := f.attr &^ atimeAttr
			switch {
			case f.attr&atimeAttr != 0:
				o.recClr |= unix.MOUNT_ATTR__ATIME
				if f.clear {
					// "Not noatime" etc. means back to the default, relatime.
					a = unix.MOUNT_ATTR_RELATIME
				}
				o.recSet = o.recSet&^unix.MOUNT_ATTR__ATIME | a
			case f.clear:
				o.recSet &^= a
				o.recClr |= a
			default:
				o.recSet |= a
				o.recClr &^= a
			}
			continue
		}
		switch opt {
		case "tmpcopyup":
			o.tmpcopyup = true
		case "idmap":
			o.idmap = true
		case "ridmap":
			o.ridmap = true
		default:
			o.data = append(o.data, opt)
		}
	}
	return o
}

// hasRec reports whether recursive attributes were requested.
func (o *mountOpts) hasRec() bool { return o.recSet != 0 || o.recClr != 0 }

func (o *mountOpts) dataString() string { return strings.Join(o.data, ",") }
