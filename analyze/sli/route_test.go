package sli

import (
	"testing"

	"github.com/rewind-tools/rewind/analyze"
)

func TestRouteTemplate(t *testing.T) {
	for in, want := range map[string]string{
		"/":                         "/",
		"/healthz":                  "/healthz",
		"/api/users/42":             "/api/users/{id}",
		"/api/users/42/orders/7":    "/api/users/{id}/orders/{id}",
		"/v1/items":                 "/v1/items",
		"/files/3f2a9c0d1e4b5a6978": "/files/{hash}",
		"/o/123e4567-e89b-12d3-a456-426614174000/x": "/o/{uuid}/x",
		"/s/eyJhbGciOiJIUzI1NiJ9abc123":             "/s/{token}",
		"/static/app.js":                            "/static/app.js",
		"/users/me":                                 "/users/me",
		"/2024/report":                              "/{id}/report",
		"/deadbeef":                                 "/deadbeef",
		"/api/users/42/":                            "/api/users/{id}/",
	} {
		if got := RouteTemplate(in); got != want {
			t.Errorf("RouteTemplate(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkRouteTemplate(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		RouteTemplate("/api/users/12345/orders")
		RouteTemplate("/api/search")
	}
}

// A gRPC call's endpoint is its method's path, kept as it is even where a
// segment looks variable.
func TestRouterGRPCEndpoint(t *testing.T) {
	r := NewRouter(nil)
	ex := &analyze.Exchange{Request: analyze.Request{Method: "POST", Host: "Svc", Path: "/v2.Store/Get2024"},
		GRPC: &analyze.GRPC{Service: "v2.Store", Method: "Get2024", Status: 0}}
	if k := r.Endpoint(ex); k.String() != "POST svc/v2.Store/Get2024" {
		t.Errorf("gRPC endpoint %q", k)
	}
	ex.GRPC = nil
	ex.Request.Path = "/api/users/42"
	if k := r.Endpoint(ex); k.Path != "/api/users/{id}" {
		t.Errorf("HTTP endpoint %q", k)
	}
}

// Consecutive exchanges reuse the last path's route and the last host's
// lower case; a change of either is seen.
func TestRouterEndpointSequence(t *testing.T) {
	pinned, err := ParseRoute("/pinned/*")
	if err != nil {
		t.Fatal(err)
	}
	r := NewRouter([]Route{pinned})
	for _, c := range []struct{ host, path, want string }{
		{"A.example", "/api/users/1", "GET a.example/api/users/{id}"},
		{"A.example", "/api/users/1", "GET a.example/api/users/{id}"},
		{"b.example", "/api/users/1", "GET b.example/api/users/{id}"},
		{"b.example", "/pinned/x", "GET b.example/pinned/*"},
		{"B.EXAMPLE", "/plain", "GET b.example/plain"},
		{"", "", "GET "},
		{"", "/plain", "GET /plain"},
	} {
		ex := &analyze.Exchange{Request: analyze.Request{Method: "GET", Host: c.host, Path: c.path}}
		if k := r.Endpoint(ex); k.String() != c.want {
			t.Errorf("Endpoint(%s %s) = %q, want %q", c.host, c.path, k, c.want)
		}
	}
}
