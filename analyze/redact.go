package analyze

import (
	"github.com/rewind-tools/rewind/capture/redact"
)

// redactExchange applies p to an exchange's headers, trailers, target and
// bodies. Body matches are replaced in the captured bytes, so redacted
// captured bytes no longer match BodyBytes; that is the point.
func redactExchange(p *redact.Policy, ex *Exchange) {
	redactFields(p, ex.Request.Header)
	redactFields(p, ex.Request.Trailer)
	redactFields(p, ex.Response.Header)
	redactFields(p, ex.Response.Trailer)
	if v, ok := p.Text(ex.Request.Target); ok {
		ex.Request.Target = v
	}
	if v, ok := p.Text(ex.Request.Query); ok {
		ex.Request.Query = v
	}
	if v, ok := p.Text(ex.Request.Path); ok {
		ex.Request.Path = v
	}
	if b, ok := p.Body(ex.Request.Body); ok {
		ex.Request.Body = b
	}
	if b, ok := p.Body(ex.Response.Body); ok {
		ex.Response.Body = b
	}
}

func redactFields(p *redact.Policy, f Fields) {
	for i := range f {
		if p.Untouched(len(f[i].Name)) {
			continue
		}
		if v, ok := p.Value(f[i].Name, f[i].Value); ok {
			f[i].Value = v
		}
	}
}
