package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
)

// HijackedResponse is an attach or exec stream: the connection the daemon
// took over after "101 UPGRADED", read through Reader.
type HijackedResponse struct {
	mediaType string
	Conn      net.Conn
	Reader    *bufio.Reader
}

// Close closes the connection.
func (h *HijackedResponse) Close() { _ = h.Conn.Close() }

// MediaType is the stream's Content-Type, if the daemon sent one
// (application/vnd.docker.multiplexed-stream or raw-stream).
func (h *HijackedResponse) MediaType() (string, bool) { return h.mediaType, h.mediaType != "" }

// CloseWriter is a connection whose writing half closes alone.
type CloseWriter interface{ CloseWrite() error }

// CloseWrite ends the stream's input (the container's stdin sees EOF).
func (h *HijackedResponse) CloseWrite() error {
	if cw, ok := h.Conn.(CloseWriter); ok {
		return cw.CloseWrite()
	}
	return nil
}

// postHijacked sends a POST asking to upgrade the connection and returns
// the connection once the daemon has switched protocols.
func (c *Client) postHijacked(ctx context.Context, p string, query url.Values, v any) (HijackedResponse, error) {
	body, header, err := jsonBody(v, nil)
	if err != nil {
		return HijackedResponse{}, err
	}
	header = header.Clone()
	if header == nil {
		header = http.Header{}
	}
	header.Set("Connection", "Upgrade")
	header.Set("Upgrade", "tcp")
	var br *bufio.Reader
	resp, err := c.exchange(ctx, http.MethodPost, p, query, header, body, func(req *http.Request) (*http.Response, error) {
		var resp *http.Response
		var err error
		resp, br, err = c.hijack(ctx, req)
		return resp, err
	})
	if err != nil {
		return HijackedResponse{}, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer closeBody(resp)
		if err := responseError(resp); err != nil {
			return HijackedResponse{}, err
		}
		return HijackedResponse{}, fmt.Errorf("unable to upgrade to tcp, received %d", resp.StatusCode)
	}
	// The stream outlives ctx: a cancelled ctx no longer closes it.
	cb := resp.Body.(*connBody)
	if !cb.stop() {
		cb.conn.Close()
		return HijackedResponse{}, ctx.Err()
	}
	return HijackedResponse{Conn: cb.conn, Reader: br, mediaType: resp.Header.Get("Content-Type")}, nil
}

// hijack sends req on a connection of its own (TLS when the client's is)
// and reads the answer; its body owns the connection.
func (c *Client) hijack(ctx context.Context, req *http.Request) (*http.Response, *bufio.Reader, error) {
	conn, err := c.dial(ctx, "", "")
	if err != nil {
		return nil, nil, c.connectError(err)
	}
	if c.tlsConfig != nil {
		cfg := c.tlsConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(c.addr)
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, nil, c.connectError(err)
		}
		conn = tc // its CloseWrite sends close_notify
	}
	resp, br, err := roundTripOn(ctx, conn, req)
	if err != nil {
		return nil, nil, c.connectError(err)
	}
	return resp, br, nil
}
