package client_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"berth.dev/berth/client"
	"berth.dev/berth/internal/testutil"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
)

// TestRegistryCalls: RegistryLogin, ImagePush, ImageSearch and ImagePull
// against a berth daemon and a registry with basic auth.
func TestRegistryCalls(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Htpasswd: map[string]string{"alice": "s3cret"}})
	cl, _ := startBerthd(t)
	ctx := context.Background()
	loadBusybox(t, cl)
	ref := reg.Addr + "/berthtest/bb:v1"
	if _, err := cl.ImageTag(ctx, client.ImageTagOptions{Source: "berthtest/bb:v1", Target: ref}); err != nil {
		t.Fatal(err)
	}

	_, err := cl.RegistryLogin(ctx, client.RegistryLoginOptions{Username: "alice", Password: "wrong", ServerAddress: reg.Addr})
	if !cerrdefs.IsUnauthorized(err) {
		t.Fatalf("login with a wrong password: %v", err)
	}
	res, err := cl.RegistryLogin(ctx, client.RegistryLoginOptions{Username: "alice", Password: "s3cret", ServerAddress: reg.Addr})
	if err != nil || res.Auth.Status != "Login Succeeded" {
		t.Fatalf("login: %+v %v", res, err)
	}
	auth, err := authconfig.Encode(registry.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: reg.Addr})
	if err != nil {
		t.Fatal(err)
	}
	stream := func(rc io.ReadCloser, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// Without credentials the daemon still gets the header ("{}") and the
	// refusal comes in the stream.
	if out := stream(cl.ImagePush(ctx, ref, client.ImagePushOptions{})); !strings.Contains(out, `"errorDetail"`) {
		t.Fatalf("push without credentials: %s", out)
	}
	if out := stream(cl.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: auth})); !strings.Contains(out, "v1: digest: sha256:") {
		t.Fatalf("push: %s", out)
	}
	if _, err := cl.ImagePush(ctx, reg.Addr+"/berthtest/bb@sha256:"+strings.Repeat("0", 64), client.ImagePushOptions{}); err == nil || err.Error() != "cannot push a digest reference" {
		t.Fatalf("push of a digest: %v", err)
	}
	// Refused without credentials, the search asks the privilege
	// function for some and is made again with them.
	asked := 0
	priv := func(context.Context) (string, error) { asked++; return auth, nil }
	sr, err := cl.ImageSearch(ctx, reg.Addr+"/berthtest", client.ImageSearchOptions{PrivilegeFunc: priv, Limit: 5})
	if err != nil || len(sr.Items) != 1 || sr.Items[0].Name != reg.Addr+"/berthtest/bb" || asked != 1 {
		t.Fatalf("search: %+v %v (privilege asked %d times)", sr, err, asked)
	}
	asked = 0

	if _, err := cl.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if out := stream(cl.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: auth, PrivilegeFunc: priv})); !strings.Contains(out, "Status: Downloaded newer image for "+ref) {
		t.Fatalf("pull: %s", out)
	}
	if asked != 0 {
		t.Errorf("the privilege function was asked %d times with good credentials", asked)
	}
}
