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
	req, err := c.newRequest(ctx, http.MethodPost, c.apiPath(ctx, p, query), header, body)
	if err != nil {
		return HijackedResponse{}, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	conn, err := c.dial(ctx, "", "")
	if err != nil {
		return HijackedResponse{}, c.connectError(err)
	}
	if c.tlsConfig != nil {
		cfg := c.tlsConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(c.addr)
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return HijackedResponse{}, c.connectError(err)
		}
		conn = tc // its CloseWrite sends close_notify
	}
	// A cancelled context closes the connection, ending a blocked read.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	br := bufio.NewReader(conn)
	resp, err := roundTrip(conn, br, req)
	if !stop() {
		conn.Close()
		return HijackedResponse{}, ctx.Err()
	}
	if err != nil {
		conn.Close()
		return HijackedResponse{}, c.connectError(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer conn.Close()
		if err := responseError(resp); err != nil {
			return HijackedResponse{}, err
		}
		return HijackedResponse{}, fmt.Errorf("unable to upgrade to tcp, received %d", resp.StatusCode)
	}
	return HijackedResponse{Conn: conn, Reader: br, mediaType: resp.Header.Get("Content-Type")}, nil
}

func roundTrip(conn net.Conn, br *bufio.Reader, req *http.Request) (*http.Response, error) {
	if err := req.Write(conn); err != nil {
		return nil, err
	}
	return http.ReadResponse(br, req)
}
