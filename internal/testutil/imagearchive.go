package testutil

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// LayerTar tars dir into out with GNU tar, as a tool other than berth
// would write a layer.
func LayerTar(dir, out string) error {
	cmd := exec.Command("tar", "--numeric-owner", "--xattrs", "-C", dir, "-cf", out, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tar %s: %v: %s", dir, err, b)
	}
	return nil
}

// DockerArchive writes to out a docker-archive as docker save wrote it
// before docker 25 (<id>/layer.tar, <config>.json, manifest.json) of an
// image whose layers are the given directories (tarred with LayerTar),
// tagged tags, running cmd. It returns the image ID (the config digest).
func DockerArchive(out string, tags, cmd []string, layerDirs ...string) (string, error) {
	work, err := os.MkdirTemp(filepath.Dir(out), ".layers-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	var diffIDs, layerPaths, layerFiles []string
	for i, d := range layerDirs {
		p := filepath.Join(work, fmt.Sprintf("l%d.tar", i))
		if err := LayerTar(d, p); err != nil {
			return "", err
		}
		h, err := sha256File(p)
		if err != nil {
			return "", err
		}
		diffIDs = append(diffIDs, "sha256:"+h)
		layerPaths = append(layerPaths, h+"/layer.tar")
		layerFiles = append(layerFiles, p)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var history []map[string]any
	for i := range layerDirs {
		history = append(history, map[string]any{"created": created, "created_by": fmt.Sprintf("layer %d", i)})
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": created,
		"config":  map[string]any{"Cmd": cmd, "Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history": history,
	})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(cfg)
	cfgHex := hex.EncodeToString(sum[:])
	manifest, err := json.Marshal([]map[string]any{{"Config": cfgHex + ".json", "RepoTags": tags, "Layers": layerPaths}})
	if err != nil {
		return "", err
	}

	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for i, p := range layerFiles {
		if err := addFile(tw, layerPaths[i], p); err != nil {
			return "", err
		}
	}
	for _, e := range []struct {
		name string
		data []byte
	}{{cfgHex + ".json", cfg}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(e.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return "sha256:" + cfgHex, f.Close()
}

func addFile(tw *tar.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
