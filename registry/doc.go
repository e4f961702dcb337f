// Package registry is berth's distribution client: it talks to image
// registries (Docker Hub and private ones) with the OCI distribution
// protocol and Docker's registry API v2 — manifests and blobs, pull by tag
// or digest, pushes with cross-repository mounts, search, login.
//
// A Client holds what the daemon is configured with: the certs.d
// directory (CA roots and client certificates per host[:port]), the
// insecure registries (127.0.0.0/8 by default), Docker Hub mirrors. A
// Repository is one repository on the endpoint that answered, with the
// credentials and scope one operation needs; it authenticates as the
// registry's challenge asks (anonymous, basic, or bearer tokens from the
// registry's token server, refreshed when a response asks for more scope).
//
// Everything read from a registry is bounded and verified: manifests are
// size-limited and checked against their digest, blob readers stop at the
// descriptor's size and resume an interrupted body with a Range request.
// Nothing here knows about the image store; package image pulls and pushes
// with it.
package registry
