package http2

import (
	"bytes"
	"errors"

	"golang.org/x/net/http2/hpack"
)

// HPACK with an unknown dynamic table.
//
// The decoder of a direction joined mid-connection (or after a gap, or after
// a decoding error) does not know the entries the peer's encoder inserted
// before. Rather than failing on the first reference to one of them (which
// would lose the rest of the header block: hpack.Decoder stops at an unknown
// index and the length of the failing representation is not exposed), the
// table is filled with placeholder entries: name "" and value "", which the
// HPACK size rule counts as 32 bytes each, the smallest an entry can be. A
// table of max size S then holds S/32 placeholders, at least as many entries
// as the peer's table of size ≤ S can hold, so every index the peer uses
// resolves: to an entry inserted since we joined (both tables insert the same
// entries in the same order, so the i-th newest entry is the same on both
// sides), or to a placeholder. A placeholder decodes as an empty name, which
// no valid HTTP/2 field has: such a field is reported as unknown and never
// given a value. A literal whose name references a placeholder yields an
// unknown name with a known value; inserted into the table it stays unknown
// for later references too. Entries age out like any other, so the table
// re-syncs by itself once the peer's insertions (or a dynamic table size
// update to 0) have evicted every placeholder. Eviction counts may differ
// from the peer's (our entries with unknown names are smaller), but never the
// order, so a reference never resolves to a wrong entry: at worst it is past
// our table's end, which hpack reports as an error, and the rest of the block
// is then marked lost.
//
// The placeholders are inserted by decoding a block that a fresh
// hpack.Encoder produced for the field ("", ""), so no HPACK is hand-written.

var placeholderRep = func() []byte {
	var b writerBuf
	if err := hpack.NewEncoder(&b).WriteField(hpack.HeaderField{}); err != nil {
		panic("http2: encoding the placeholder field: " + err.Error())
	}
	return b
}()

// placeholders is placeholderRep repeated to fill the largest table.
var placeholders = bytes.Repeat(placeholderRep, bigTableSize/32)

type writerBuf []byte

func (w *writerBuf) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }

const (
	// defaultTableSize is SETTINGS_HEADER_TABLE_SIZE's initial value.
	defaultTableSize = 4096
	// bigTableSize is the placeholder table size used once a peer was seen
	// to reference past a default-sized table (browsers advertise 64 KiB).
	bigTableSize = 65536
	// maxAllowedTableSize bounds what a dynamic table size update may ask
	// for when the peer's SETTINGS are unknown.
	maxAllowedTableSize = 1 << 20
	// maxStringLength bounds one decoded header name or value.
	maxStringLength = 256 << 10
	// maxBlockFields and maxBlockBytes bound a header block kept on a
	// stream; further fields are dropped and counted as lost.
	maxBlockFields = 1024
	maxBlockBytes  = 256 << 10
)

// headerDecoder decodes the header blocks of one direction.
type headerDecoder struct {
	dec *hpack.Decoder
	// allowed is the largest table size the peer's decoder accepts, from
	// its SETTINGS (or the default).
	allowed uint32
	// unknownSize is the placeholder table size used on the next reset:
	// the default table size, raised (up to bigTableSize) by the peer's
	// SETTINGS or by a reference past a placeholder table's end.
	unknownSize uint32
	// placeholders says the table was filled with placeholders: it may
	// still hold some.
	placeholders bool
	filling      bool

	// fields of the block being decoded.
	fields  []hpack.HeaderField
	bytes   int
	unknown int // fields whose name (and value) referenced unknown entries
	lost    bool
	failed  bool // the decoder failed on the block: its rest is lost
}

func newHeaderDecoder(unknownTable bool) *headerDecoder {
	h := &headerDecoder{allowed: defaultTableSize, unknownSize: defaultTableSize}
	h.dec = hpack.NewDecoder(defaultTableSize, h.onField)
	h.dec.SetMaxStringLength(maxStringLength)
	if unknownTable {
		h.reset()
	}
	return h
}

func (h *headerDecoder) onField(f hpack.HeaderField) {
	if h.filling {
		return
	}
	if f.Name == "" {
		h.unknown++
		return
	}
	if len(h.fields) >= maxBlockFields || h.bytes+len(f.Name)+len(f.Value) > maxBlockBytes {
		h.lost = true
		return
	}
	h.bytes += len(f.Name) + len(f.Value)
	h.fields = append(h.fields, f)
}

// reset forgets the dynamic table: a fresh decoder full of placeholders.
func (h *headerDecoder) reset() {
	size := h.unknownSize
	h.dec = hpack.NewDecoder(size, h.onField)
	h.dec.SetMaxStringLength(maxStringLength)
	h.dec.SetAllowedMaxDynamicTableSize(maxAllowedTableSize)
	h.filling = true
	_, _ = h.dec.Write(placeholders[:size/32*uint32(len(placeholderRep))])
	_ = h.dec.Close()
	h.filling = false
	h.placeholders = true
}

// setAllowed applies the peer decoder's SETTINGS_HEADER_TABLE_SIZE. Only
// increases are applied: a passive observer cannot tell when the peer
// acknowledged a decrease, and must not reject what the peer accepts.
func (h *headerDecoder) setAllowed(v uint32) {
	if v <= h.allowed {
		return
	}
	h.allowed = min(v, maxAllowedTableSize)
	// A later reset must cover the larger table the peer may now use.
	h.unknownSize = max(h.unknownSize, min(h.allowed, bigTableSize))
	if !h.placeholders {
		h.dec.SetAllowedMaxDynamicTableSize(h.allowed)
	}
}

// begin starts a header block.
func (h *headerDecoder) begin() {
	h.fields = h.fields[:0]
	h.bytes, h.unknown, h.lost, h.failed = 0, 0, false, false
}

// write decodes a fragment of the current block.
func (h *headerDecoder) write(p []byte) {
	if h.failed || len(p) == 0 {
		return
	}
	if _, err := h.dec.Write(p); err != nil {
		h.fail(err)
	}
}

func (h *headerDecoder) fail(err error) {
	h.failed, h.lost = true, true
	var ie hpack.InvalidIndexError
	var de hpack.DecodingError
	if errors.As(err, &de) {
		if x, ok := de.Err.(hpack.InvalidIndexError); ok {
			ie = x
		}
	}
	if ie != 0 && h.placeholders {
		// The peer's table is larger than our placeholder table.
		h.unknownSize = bigTableSize
	}
}

// end finishes the current block; abandoned says the block was cut (a gap,
// or an interleaved frame) and its end never seen. After a failure the table
// state is unknown and the decoder is reset.
func (h *headerDecoder) end(abandoned bool) {
	if abandoned {
		h.lost = true
		h.failed = true
	} else if !h.failed {
		if err := h.dec.Close(); err != nil {
			h.fail(err)
		}
	}
	if h.failed {
		h.reset()
	}
}
