package container

import (
	"slices"
	"strings"
)

// CreateEnv is a new container's environment as dockerd makes it: the
// create request's variables in their order, then the image's that the
// request does not set.
func CreateEnv(image, create []string) []string {
	if len(create) == 0 {
		return slices.Clone(image)
	}
	out := slices.Clone(create)
	for _, e := range image {
		k, _, _ := strings.Cut(e, "=")
		if !slices.ContainsFunc(create, func(c string) bool { ck, _, _ := strings.Cut(c, "="); return ck == k }) {
			out = append(out, e)
		}
	}
	return out
}
