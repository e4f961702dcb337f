package client_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/berth/client"
	"berth.dev/berth/internal/testutil"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// loadBusybox loads a busybox image as berthtest/bb:v1.
func loadBusybox(t *testing.T, cl *client.Client) {
	t.Helper()
	tarPath := filepath.Join(t.TempDir(), "bb.tar")
	if _, err := testutil.DockerArchive(tarPath, []string{"berthtest/bb:v1"}, []string{"/bin/sh"}, testutil.BusyboxRootfs(t)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := cl.ImageLoad(context.Background(), f, client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	out, _ := io.ReadAll(res)
	if !strings.Contains(string(out), "Loaded image: berthtest/bb:v1") {
		t.Fatalf("load: %s", out)
	}
}

// TestImagesVolumesSystem: the image, volume and system calls against a
// berth daemon, their results and docker's error texts.
func TestImagesVolumesSystem(t *testing.T) {
	cl, _ := startBerthd(t)
	ctx := context.Background()
	loadBusybox(t, cl)
	if cl.ClientVersion() != client.MaxAPIVersion {
		t.Errorf("negotiated %s with berth", cl.ClientVersion())
	}

	v, err := cl.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil || v.APIVersion != client.MaxAPIVersion || v.Os != "linux" {
		t.Errorf("version: %+v %v", v, err)
	}
	info, err := cl.Info(ctx, client.InfoOptions{})
	if err != nil || info.Info.Images != 1 {
		t.Errorf("info: %d images, %v", info.Info.Images, err)
	}

	if _, err := cl.ImageTag(ctx, client.ImageTagOptions{Source: "berthtest/bb:v1", Target: "berthtest/bb"}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.ImageTag(ctx, client.ImageTagOptions{Source: "berthtest/bb:v1", Target: "Bad/Name"})
	if err == nil || err.Error() != `error parsing reference: "Bad/Name" is not a valid repository/tag: invalid reference format: repository name (Name) must be lowercase` {
		t.Errorf("bad tag: %v", err)
	}
	list, err := cl.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", "berthtest/bb")})
	if err != nil || len(list.Items) != 1 || strings.Join(list.Items[0].RepoTags, ",") != "berthtest/bb:latest,berthtest/bb:v1" {
		t.Errorf("images: %+v %v", list.Items, err)
	}
	var raw bytes.Buffer
	img, err := cl.ImageInspect(ctx, "berthtest/bb:v1", client.ImageInspectWithRawResponse(&raw))
	if err != nil || img.ID != list.Items[0].ID || !strings.Contains(raw.String(), `"Id":"`+img.ID+`"`) {
		t.Errorf("image inspect: %s %v\n%s", img.ID, err, raw.String())
	}
	if _, err := cl.ImageInspect(ctx, "berthtest/nosuch"); err == nil || !cerrdefs.IsNotFound(err) ||
		err.Error() != "Error response from daemon: no such image: berthtest/nosuch: No such image: berthtest/nosuch:latest" {
		t.Errorf("image inspect of none: %v", err)
	}
	h, err := cl.ImageHistory(ctx, "berthtest/bb:v1")
	if err != nil || len(h.Items) == 0 || h.Items[0].ID != img.ID {
		t.Errorf("history: %+v %v", h.Items, err)
	}
	save, err := cl.ImageSave(ctx, []string{"berthtest/bb:v1"})
	if err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, save)
	save.Close()
	if !strings.Contains(names, "manifest.json") {
		t.Errorf("save: %s", names)
	}
	rm, err := cl.ImageRemove(ctx, "berthtest/bb:latest", client.ImageRemoveOptions{})
	if err != nil || len(rm.Items) != 1 || rm.Items[0].Untagged != "berthtest/bb:latest" {
		t.Errorf("rmi: %+v %v", rm.Items, err)
	}

	vol, err := cl.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "v1", Labels: map[string]string{"a": "b"}})
	if err != nil || vol.Volume.Name != "v1" || vol.Volume.Driver != "local" {
		t.Fatalf("volume create: %+v %v", vol, err)
	}
	vi, err := cl.VolumeInspect(ctx, "v1", client.VolumeInspectOptions{})
	if err != nil || vi.Volume.Labels["a"] != "b" || !bytes.Contains(vi.Raw, []byte(`"Name": "v1"`)) && !bytes.Contains(vi.Raw, []byte(`"Name":"v1"`)) {
		t.Errorf("volume inspect: %+v %v %s", vi.Volume, err, vi.Raw)
	}
	vl, err := cl.VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("label", "a=b")})
	if err != nil || len(vl.Items) != 1 {
		t.Errorf("volume ls: %+v %v", vl.Items, err)
	}
	if _, err := cl.VolumeInspect(ctx, "nosuch", client.VolumeInspectOptions{}); err == nil || !cerrdefs.IsNotFound(err) ||
		err.Error() != "Error response from daemon: get nosuch: no such volume" {
		t.Errorf("volume inspect of none: %v", err)
	}
	if _, err := cl.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "../x"}); err == nil || !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("volume named ../x: %v", err)
	}
	pr, err := cl.VolumePrune(ctx, client.VolumePruneOptions{All: true})
	if err != nil || strings.Join(pr.Report.VolumesDeleted, ",") != "v1" {
		t.Errorf("volume prune: %+v %v", pr.Report, err)
	}
	du, err := cl.DiskUsage(ctx, client.DiskUsageOptions{Images: true, Containers: true, Volumes: true, Verbose: true})
	if err != nil || du.Images.TotalCount != 1 || len(du.Images.Items) != 1 || du.Volumes.TotalCount != 0 {
		t.Errorf("df: %+v %v", du, err)
	}
}

func tarNames(t *testing.T, r io.Reader) string {
	t.Helper()
	var names []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return strings.Join(names, " ")
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

// TestContainers: a container's life through the client, a hijacked
// attach carrying stdin and stdout, exec, archive, events, stats, and the
// daemon's 404/409/400 answers as docker's client shows them.
func TestContainers(t *testing.T) {
	cl, _ := startBerthd(t)
	ctx := context.Background()
	loadBusybox(t, cl)

	evCtx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	ev := cl.Events(evCtx, client.EventsListOptions{Filters: make(client.Filters).Add("type", string(events.ContainerEventType)).Add("event", "create")})

	cfg := &container.Config{Image: "berthtest/bb:v1", Cmd: []string{"sh", "-c", "cat; echo bye >&2; exit 3"},
		OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true}
	hc := &container.HostConfig{NetworkMode: "none", CapAdd: []string{"net_admin", "CAP_NET_ADMIN"}}
	cr, err := cl.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, Name: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.ContainerRemove(ctx, cr.ID, client.ContainerRemoveOptions{Force: true}) //nolint:errcheck // cleanup

	select {
	case m := <-ev.Messages:
		if m.Actor.ID != cr.ID || m.Action != events.ActionCreate {
			t.Errorf("event: %+v", m)
		}
	case err := <-ev.Err:
		t.Fatalf("events: %v", err)
	}
	stopEvents()
	if err := <-ev.Err; !errors.Is(err, context.Canceled) {
		t.Errorf("events after cancel: %v", err)
	}

	_, err = cl.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, Name: "c1"})
	if err == nil || !cerrdefs.IsConflict(err) || !strings.HasPrefix(err.Error(), `Error response from daemon: Conflict. The container name "/c1" is already in use by container "`+cr.ID+`"`) {
		t.Errorf("same name: %v", err)
	}
	_, err = cl.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, Name: "bad/name"})
	if err == nil || !cerrdefs.IsInvalidArgument(err) || err.Error() != "Error response from daemon: Invalid container name (bad/name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" {
		t.Errorf("bad name: %v", err)
	}
	_, err = cl.ContainerInspect(ctx, "nosuch", client.ContainerInspectOptions{})
	if err == nil || !cerrdefs.IsNotFound(err) || err.Error() != "Error response from daemon: No such container: nosuch" {
		t.Errorf("inspect of none: %v", err)
	}
	ins, err := cl.ContainerInspect(ctx, "c1", client.ContainerInspectOptions{})
	if err != nil || ins.Container.ID != cr.ID || strings.Join(ins.Container.HostConfig.CapAdd, ",") != "CAP_NET_ADMIN" || !bytes.Contains(ins.Raw, []byte(cr.ID)) {
		t.Errorf("inspect: %+v %v", ins.Container.HostConfig, err)
	}

	att, err := cl.ContainerAttach(ctx, cr.ID, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if mt, ok := att.MediaType(); ok && mt != "application/vnd.docker.multiplexed-stream" {
		t.Errorf("attach media type %q", mt)
	}
	wait := cl.ContainerWait(ctx, cr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cl.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(att.Conn, "hello through the hijack\n"); err != nil {
		t.Fatal(err)
	}
	if err := att.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "hello through the hijack\n" || stderr.String() != "bye\n" {
		t.Errorf("attach: stdout %q stderr %q", stdout.String(), stderr.String())
	}
	select {
	case r := <-wait.Result:
		if r.StatusCode != 3 {
			t.Errorf("exit %d", r.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatal(err)
	}
	logs, err := cl.ContainerLogs(ctx, cr.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Since: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	_, err = stdcopy.StdCopy(&stdout, &stderr, logs)
	logs.Close()
	if err != nil || stdout.String() != "hello through the hijack\n" || stderr.String() != "bye\n" {
		t.Errorf("logs: %q %q %v", stdout.String(), stderr.String(), err)
	}
	if _, err := cl.ContainerLogs(ctx, cr.ID, client.ContainerLogsOptions{Since: "soon"}); err == nil ||
		err.Error() != `invalid value for "since": failed to parse value as time or duration: "soon"` {
		t.Errorf("logs since soon: %v", err)
	}

	// A running one for exec, archive, stats, pause, top.
	r2, err := cl.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "berthtest/bb:v1",
		Cmd: []string{"sleep", "1000"}}, HostConfig: &container.HostConfig{NetworkMode: "none"}, Name: "c2"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.ContainerRemove(ctx, r2.ID, client.ContainerRemoveOptions{Force: true}) //nolint:errcheck // cleanup
	if _, err := cl.ContainerStart(ctx, "c2", client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ContainerRemove(ctx, "c2", client.ContainerRemoveOptions{}); err == nil || !cerrdefs.IsConflict(err) ||
		!strings.HasPrefix(err.Error(), "Error response from daemon: cannot remove container \"c2\": container is running") {
		t.Errorf("rm running: %v", err)
	}
	ex, err := cl.ExecCreate(ctx, "c2", client.ExecCreateOptions{Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	ea, err := cl.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	_, err = stdcopy.StdCopy(&stdout, &stderr, ea.Reader)
	ea.Close()
	if err != nil || stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("exec: %q %q %v", stdout.String(), stderr.String(), err)
	}
	ei, err := cl.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil || ei.ExitCode != 7 || ei.Running || ei.ContainerID != r2.ID {
		t.Errorf("exec inspect: %+v %v", ei, err)
	}
	if _, err := cl.ExecCreate(ctx, "c2", client.ExecCreateOptions{Cmd: []string{"true"}, ConsoleSize: client.ConsoleSize{Height: 1, Width: 1}}); err == nil ||
		err.Error() != "console size is only supported when TTY is enabled" {
		t.Errorf("console size without tty: %v", err)
	}

	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "greeting", Mode: 0o644, Size: 5}) //nolint:errcheck // to a buffer
	tw.Write([]byte("hello"))                                           //nolint:errcheck // to a buffer
	tw.Close()
	if _, err := cl.CopyToContainer(ctx, "c2", client.CopyToContainerOptions{DestinationPath: "/tmp", Content: &tb}); err != nil {
		t.Fatal(err)
	}
	st, err := cl.ContainerStatPath(ctx, "c2", client.ContainerStatPathOptions{Path: "/tmp/greeting"})
	if err != nil || st.Stat.Name != "greeting" || st.Stat.Size != 5 {
		t.Errorf("stat: %+v %v", st.Stat, err)
	}
	if _, err := cl.ContainerStatPath(ctx, "c2", client.ContainerStatPathOptions{Path: "/nosuch"}); err == nil || !cerrdefs.IsNotFound(err) {
		t.Errorf("stat of none: %v", err)
	}
	cp, err := cl.CopyFromContainer(ctx, "c2", client.CopyFromContainerOptions{SourcePath: "/tmp/greeting"})
	if err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, cp.Content)
	cp.Content.Close()
	if names != "greeting" || cp.Stat.Size != 5 {
		t.Errorf("copy from: %s %+v", names, cp.Stat)
	}

	sr, err := cl.ContainerStats(ctx, "c2", client.ContainerStatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var stats container.StatsResponse
	err = jsonDecode(sr.Body, &stats)
	sr.Body.Close()
	if err != nil || stats.ID != r2.ID || stats.PidsStats.Current == 0 {
		t.Errorf("stats: %+v %v", stats, err)
	}
	top, err := cl.ContainerTop(ctx, "c2", client.ContainerTopOptions{})
	if err != nil || len(top.Processes) != 1 || !strings.Contains(strings.Join(top.Processes[0], " "), "sleep 1000") {
		t.Errorf("top: %+v %v", top, err)
	}
	if _, err := cl.ContainerPause(ctx, "c2", client.ContainerPauseOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ContainerUnpause(ctx, "c2", client.ContainerUnpauseOptions{}); err != nil {
		t.Fatal(err)
	}
	mem := int64(64 << 20)
	if _, err := cl.ContainerUpdate(ctx, "c2", client.ContainerUpdateOptions{Resources: &container.Resources{Memory: mem, MemorySwap: -1}}); err != nil {
		t.Errorf("update: %v", err)
	}
	list, err := cl.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("name", "c2")})
	if err != nil || len(list.Items) != 1 || list.Items[0].ID != r2.ID {
		t.Errorf("ps: %+v %v", list.Items, err)
	}
	if _, err := cl.ContainerRename(ctx, "c2", client.ContainerRenameOptions{NewName: "c3"}); err != nil {
		t.Error(err)
	}
	timeout := 0
	if _, err := cl.ContainerStop(ctx, "c3", client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	pr, err := cl.ContainerPrune(ctx, client.ContainerPruneOptions{})
	if err != nil || len(pr.Report.ContainersDeleted) != 2 {
		t.Errorf("prune: %+v %v", pr.Report, err)
	}
}
