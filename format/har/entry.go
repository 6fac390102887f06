package har

import (
	"cmp"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/format/internal/jsonenc"
)

// startedLayout is ISO 8601 with milliseconds and the zone, as browsers
// write startedDateTime.
const startedLayout = "2006-01-02T15:04:05.000Z07:00"

func (w *Writer) appendEntry(b []byte, ex *analyze.Exchange) []byte {
	c := ex.Conn
	if c == nil {
		c = &analyze.Conn{}
	}
	req := &ex.Request

	// Timings. send, wait and receive must be >= 0; a part that was not
	// measured is 0. The client side's timings are already mirrored.
	var send, wait, receive int64
	if req.Start != 0 && req.End >= req.Start {
		send = int64(req.End - req.Start)
	}
	if ex.Timings.Server > 0 {
		wait = ex.Timings.Server
	}
	if ex.Timings.Transfer > 0 {
		receive = ex.Timings.Transfer
	}

	b = append(b, `{"startedDateTime":"`...)
	b = w.base.Add(time.Duration(ex.Start())).AppendFormat(b, startedLayout)
	b = append(b, `","time":`...)
	b = jsonenc.Millis(b, send+wait+receive)

	b = w.appendRequest(b, ex, c)
	b = w.appendResponse(b, ex)

	b = append(b, `,"cache":{},"timings":{"blocked":-1,"dns":-1,"connect":-1,"ssl":-1,"send":`...)
	b = jsonenc.Millis(b, send)
	b = append(b, `,"wait":`...)
	b = jsonenc.Millis(b, wait)
	b = append(b, `,"receive":`...)
	b = jsonenc.Millis(b, receive)
	if ex.Timings.Network >= 0 {
		b = append(b, `,"_network":`...)
		b = jsonenc.Millis(b, ex.Timings.Network)
	}
	b = append(b, '}')

	server, client := c.Local, c.Remote
	if c.Role != capture.RoleServer {
		server, client = c.Remote, c.Local
	}
	if server.IsValid() {
		b = append(b, `,"serverIPAddress":"`...)
		b = server.Addr().Unmap().WithZone("").AppendTo(b)
		b = append(b, '"')
	}
	if client.IsValid() {
		// The client's port names the TCP connection, as browsers do.
		b = append(b, `,"connection":"`...)
		b = strconv.AppendUint(b, uint64(client.Port()), 10)
		b = append(b, '"')
	}

	b = append(b, `,"_seq":`...)
	b = jsonenc.Int(b, int64(ex.Seq))
	b = append(b, `,"_pid":`...)
	b = jsonenc.Uint(b, uint64(c.PID))
	b = append(b, `,"_comm":`...)
	b = jsonenc.String(b, c.Comm)
	if ct := c.Container; ct.Known() {
		// As "container" in JSON lines.
		b = append(b, `,"_container":{"runtime":`...)
		b = jsonenc.String(b, ct.Runtime)
		b = append(b, `,"id":`...)
		b = jsonenc.String(b, ct.ID)
		if ct.PodUID != "" {
			b = append(b, `,"pod_uid":`...)
			b = jsonenc.String(b, ct.PodUID)
			b = append(b, `,"qos":`...)
			b = jsonenc.String(b, ct.QoS)
		}
		if ct.Pod != "" {
			b = append(b, `,"pod":`...)
			b = jsonenc.String(b, ct.Pod)
		}
		if ct.Namespace != "" {
			b = append(b, `,"namespace":`...)
			b = jsonenc.String(b, ct.Namespace)
		}
		if ct.Hostname != "" {
			b = append(b, `,"hostname":`...)
			b = jsonenc.String(b, ct.Hostname)
		}
		if ct.Name != "" {
			b = append(b, `,"name":`...)
			b = jsonenc.String(b, ct.Name)
		}
		b = append(b, '}')
	}
	if c.NetNS != 0 {
		// As "netns" in JSON lines.
		b = append(b, `,"_netns":`...)
		b = jsonenc.Uint(b, c.NetNS)
	}
	b = append(b, `,"_connection":`...)
	b = jsonenc.String(b, c.ID)
	b = append(b, `,"_role":`...)
	b = jsonenc.String(b, c.Role.String())
	b = append(b, `,"_tls":`...)
	b = jsonenc.String(b, tlsName(c))
	b = append(b, `,"_flags":`...)
	w.names = ex.Flags.AppendNames(w.names[:0])
	b = jsonenc.Strings(b, w.names)
	if ex.StreamID != 0 {
		b = append(b, `,"_streamId":`...)
		b = jsonenc.Uint(b, uint64(ex.StreamID))
	}
	if g := ex.GRPC; g != nil {
		b = append(b, `,"_grpc":{"service":`...)
		b = jsonenc.String(b, g.Service)
		b = append(b, `,"method":`...)
		b = jsonenc.String(b, g.Method)
		b = append(b, `,"status":`...)
		b = jsonenc.Int(b, int64(g.Status))
		b = append(b, `,"message":`...)
		b = jsonenc.String(b, g.Message)
		b = append(b, '}')
	}
	return append(b, '}')
}

func tlsName(c *analyze.Conn) string {
	if c.TLS == "" {
		return "none"
	}
	return c.TLS
}

func (w *Writer) appendRequest(b []byte, ex *analyze.Exchange, c *analyze.Conn) []byte {
	req := &ex.Request
	b = append(b, `,"request":{"method":`...)
	b = jsonenc.String(b, req.Method)
	b = append(b, `,"url":`...)
	w.url = appendURL(w.url[:0], ex, c)
	b = jsonenc.Bytes(b, w.url)
	b = append(b, `,"httpVersion":`...)
	b = jsonenc.String(b, cmp.Or(req.Proto, ex.Proto))
	b = append(b, `,"cookies":[`...)
	n := 0
	for _, f := range req.Header {
		if strings.EqualFold(f.Name, "Cookie") {
			b, n = appendRequestCookies(b, f.Value, n)
		}
	}
	b = append(b, ']')
	b = appendHeaders(b, req.Header)
	b = append(b, `,"queryString":[`...)
	b = appendQuery(b, req.Query)
	b = append(b, ']')
	if req.BodyBytes > 0 || len(req.Body) > 0 {
		b = append(b, `,"postData":{"mimeType":`...)
		b = jsonenc.String(b, cmp.Or(req.Header.Get("Content-Type"), "application/octet-stream"))
		b = w.appendBody(b, &req.Message)
		b = append(b, '}')
	}
	b = append(b, `,"headersSize":`...)
	b = jsonenc.Int(b, headersSize(&req.Message))
	b = append(b, `,"bodySize":`...)
	b = jsonenc.Int(b, max(req.BodyBytes, -1))
	return append(b, '}')
}

func (w *Writer) appendResponse(b []byte, ex *analyze.Exchange) []byte {
	resp := &ex.Response
	b = append(b, `,"response":{"status":`...)
	b = jsonenc.Int(b, int64(resp.Status))
	b = append(b, `,"statusText":`...)
	reason := resp.Reason
	if reason == "" && resp.Status != 0 {
		reason = http.StatusText(resp.Status)
	}
	b = jsonenc.String(b, reason)
	b = append(b, `,"httpVersion":`...)
	proto := ""
	if resp.Status != 0 {
		proto = cmp.Or(resp.Proto, ex.Proto)
	}
	b = jsonenc.String(b, proto)
	b = append(b, `,"cookies":[`...)
	n := 0
	for _, f := range resp.Header {
		if strings.EqualFold(f.Name, "Set-Cookie") {
			b, n = appendSetCookie(b, f.Value, n)
		}
	}
	b = append(b, ']')
	b = appendHeaders(b, resp.Header)
	b = append(b, `,"content":{`...)
	if resp.Status == 0 {
		b = append(b, `"size":0,"mimeType":"x-unknown","comment":"no response in the capture"}`...)
	} else {
		b = w.appendContent(b, resp)
		b = append(b, '}')
	}
	b = append(b, `,"redirectURL":`...)
	b = jsonenc.String(b, resp.Header.Get("Location"))
	b = append(b, `,"headersSize":`...)
	size := headersSize(&resp.Message)
	bodySize := max(resp.BodyBytes, -1)
	if resp.Status == 0 {
		size, bodySize = -1, -1
	}
	b = jsonenc.Int(b, size)
	b = append(b, `,"bodySize":`...)
	b = jsonenc.Int(b, bodySize)
	if len(resp.Trailer) > 0 {
		b = append(b, `,"_trailers":[`...)
		b = appendFields(b, resp.Trailer)
		b = append(b, ']')
	}
	return append(b, '}')
}

func headersSize(m *analyze.Message) int64 {
	if m.HeaderBytes > 0 {
		return m.HeaderBytes
	}
	return -1
}

func appendHeaders(b []byte, h analyze.Fields) []byte {
	b = append(b, `,"headers":[`...)
	b = appendFields(b, h)
	return append(b, ']')
}

func appendFields(b []byte, h analyze.Fields) []byte {
	for i, f := range h {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = jsonenc.String(b, f.Name)
		b = append(b, `,"value":`...)
		b = jsonenc.String(b, f.Value)
		b = append(b, '}')
	}
	return b
}

// appendURL appends the absolute URL: the absolute-form target when the
// request used one, else scheme://host/path?query with the host from the
// Host header (:authority) or the server's address.
func appendURL(b []byte, ex *analyze.Exchange, c *analyze.Conn) []byte {
	req := &ex.Request
	t := req.Target
	if strings.HasPrefix(t, "http://") || strings.HasPrefix(t, "https://") {
		return append(b, t...)
	}
	scheme := req.Header.Get(":scheme")
	if scheme == "" {
		scheme = "http"
		if tlsName(c) != "none" {
			scheme = "https"
		}
	}
	b = append(b, scheme...)
	b = append(b, "://"...)
	if req.Method == "CONNECT" && t != "" {
		b = append(b, t...)
		return append(b, '/')
	}
	if req.Host != "" {
		b = append(b, req.Host...)
	} else {
		server := c.Local
		if c.Role != capture.RoleServer {
			server = c.Remote
		}
		if server.IsValid() {
			b = netip.AddrPortFrom(server.Addr().Unmap(), server.Port()).AppendTo(b)
		} else {
			b = append(b, "unknown"...)
		}
	}
	if req.Path == "" || req.Path[0] != '/' {
		b = append(b, '/')
	}
	b = append(b, req.Path...)
	if req.Query != "" {
		b = append(b, '?')
		b = append(b, req.Query...)
	}
	return b
}

// appendQuery writes the query's parameters in their order; names and values
// are unescaped when they are valid escapes, else kept as sent.
func appendQuery(b []byte, q string) []byte {
	n := 0
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, `{"name":`...)
		b = jsonenc.String(b, unescape(name))
		b = append(b, `,"value":`...)
		b = jsonenc.String(b, unescape(value))
		b = append(b, '}')
	}
	return b
}

func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// appendRequestCookies writes the pairs of a Cookie header. It is lenient:
// a pair without "=" is a cookie with an empty value.
func appendRequestCookies(b []byte, v string, n int) ([]byte, int) {
	for v != "" {
		var pair string
		pair, v, _ = strings.Cut(v, ";")
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, `{"name":`...)
		b = jsonenc.String(b, strings.TrimSpace(name))
		b = append(b, `,"value":`...)
		b = jsonenc.String(b, strings.TrimSpace(value))
		b = append(b, '}')
	}
	return b, n
}

// appendSetCookie writes one Set-Cookie header's cookie; one that net/http
// cannot parse is left out (the header itself is still in headers).
func appendSetCookie(b []byte, v string, n int) ([]byte, int) {
	ck, err := http.ParseSetCookie(v)
	if err != nil {
		return b, n
	}
	if n > 0 {
		b = append(b, ',')
	}
	b = append(b, `{"name":`...)
	b = jsonenc.String(b, ck.Name)
	b = append(b, `,"value":`...)
	b = jsonenc.String(b, ck.Value)
	if ck.Path != "" {
		b = append(b, `,"path":`...)
		b = jsonenc.String(b, ck.Path)
	}
	if ck.Domain != "" {
		b = append(b, `,"domain":`...)
		b = jsonenc.String(b, ck.Domain)
	}
	if !ck.Expires.IsZero() {
		b = append(b, `,"expires":"`...)
		b = ck.Expires.UTC().AppendFormat(b, startedLayout)
		b = append(b, '"')
	}
	b = append(b, `,"httpOnly":`...)
	b = jsonenc.Bool(b, ck.HttpOnly)
	b = append(b, `,"secure":`...)
	b = jsonenc.Bool(b, ck.Secure)
	return append(b, '}'), n + 1
}
