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
