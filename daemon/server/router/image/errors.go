package image

import "berth.dev/berth/errdefs"

func errInvalid(msg string) error        { return errdefs.Invalid("%s", msg) }
func errNotImplemented(msg string) error { return errdefs.NotImplemented("%s", msg) }
