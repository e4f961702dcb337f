package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// ContainerStatPathOptions is the path in the container.
type ContainerStatPathOptions struct{ Path string }

// ContainerStatPathResult is the path's stat.
type ContainerStatPathResult struct{ Stat container.PathStat }

// ContainerStatPath stats a path in a container (HEAD .../archive).
func (c *Client) ContainerStatPath(ctx context.Context, id string, o ContainerStatPathOptions) (ContainerStatPathResult, error) {
	id, err := trimID("container", id)
	if err != nil {
		return ContainerStatPathResult{}, err
	}
	resp, err := c.send(ctx, http.MethodHead, "/containers/"+id+"/archive", url.Values{"path": {filepath.ToSlash(o.Path)}}, nil, nil)
	if err != nil {
		return ContainerStatPathResult{}, err
	}
	closeBody(resp)
	st, err := pathStat(resp.Header)
	return ContainerStatPathResult{Stat: st}, err
}

// pathStat decodes the X-Docker-Container-Path-Stat header.
func pathStat(h http.Header) (container.PathStat, error) {
	var st container.PathStat
	dec := base64.NewDecoder(base64.StdEncoding, strings.NewReader(h.Get("X-Docker-Container-Path-Stat")))
	if err := json.NewDecoder(dec).Decode(&st); err != nil {
		return st, fmt.Errorf("unable to decode container path stat header: %s", err)
	}
	return st, nil
}

// CopyToContainerOptions is the tar to extract and where.
type CopyToContainerOptions struct {
	DestinationPath           string
	Content                   io.Reader
	AllowOverwriteDirWithFile bool
	CopyUIDGID                bool
}

// CopyToContainerResult is empty.
type CopyToContainerResult struct{}

// CopyToContainer extracts a tar into a container (PUT .../archive).
func (c *Client) CopyToContainer(ctx context.Context, id string, o CopyToContainerOptions) (CopyToContainerResult, error) {
	id, err := trimID("container", id)
	if err != nil {
		return CopyToContainerResult{}, err
	}
	q := url.Values{"path": {filepath.ToSlash(o.DestinationPath)}}
	if !o.AllowOverwriteDirWithFile {
		q.Set("noOverwriteDirNonDir", "true")
	}
	if o.CopyUIDGID {
		q.Set("copyUIDGID", "true")
	}
	body := o.Content
	if body == nil {
		body = http.NoBody
	}
	resp, err := c.send(ctx, http.MethodPut, "/containers/"+id+"/archive", q, nil, body)
	if err != nil {
		return CopyToContainerResult{}, err
	}
	closeBody(resp)
	return CopyToContainerResult{}, nil
}

// CopyFromContainerOptions is the path in the container.
type CopyFromContainerOptions struct{ SourcePath string }

// CopyFromContainerResult is the path's tar and stat.
type CopyFromContainerResult struct {
	Content io.ReadCloser
	Stat    container.PathStat
}

// CopyFromContainer reads a path of a container as a tar (GET .../archive).
func (c *Client) CopyFromContainer(ctx context.Context, id string, o CopyFromContainerOptions) (CopyFromContainerResult, error) {
	id, err := trimID("container", id)
	if err != nil {
		return CopyFromContainerResult{}, err
	}
	resp, err := c.get(ctx, "/containers/"+id+"/archive", url.Values{"path": {filepath.ToSlash(o.SourcePath)}})
	if err != nil {
		return CopyFromContainerResult{}, err
	}
	st, err := pathStat(resp.Header)
	if err != nil {
		closeBody(resp)
		return CopyFromContainerResult{Stat: st}, fmt.Errorf("unable to get resource stat from response: %s", err)
	}
	return CopyFromContainerResult{Content: resp.Body, Stat: st}, nil
}
