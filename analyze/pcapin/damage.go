package pcapin

import (
	"io"

	"github.com/rewind-tools/rewind/capture"
)

// maxDamageRegions bounds the damaged regions listed one by one; beyond it
// they are only counted (a file of garbage must not grow a list without
// bound).
const maxDamageRegions = 64

// damageLog collects the regions of a file passed over as damaged.
type damageLog struct {
	regions []capture.Damage
	last    capture.Damage // the latest region, listed or not
	count   int            // regions, listed or not
	bytes   int64          // bytes in them
}

// add records length bytes skipped at offset off for reason. A region that
// starts where the previous one ended, for the same reason, extends it.
func (d *damageLog) add(off, length int64, reason string) {
	d.bytes += length
	if d.count > 0 && d.last.Reason == reason && d.last.Offset+d.last.Length == off {
		d.last.Length += length
		if n := len(d.regions); n > 0 && d.regions[n-1].Offset == d.last.Offset {
			d.regions[n-1].Length = d.last.Length // still the listed one
		}
		return
	}
	d.count++
	d.last = capture.Damage{Offset: off, Length: length, Reason: reason}
	if len(d.regions) < maxDamageRegions {
		d.regions = append(d.regions, d.last)
	}
}

// stop records the damage that ended the reading: always listed, last.
func (d *damageLog) stop(e *damageError) {
	d.bytes += e.Length
	d.count++
	d.regions = append(d.regions, capture.Damage{Offset: e.Offset, Length: e.Length, Reason: e.Reason})
}

// damageError is damage that ends the reading of a file: a record or block
// cut off by the end of the file, damage with nothing sound after it, or a
// compressed stream that fails (from [window.need]; Cut false).
type damageError struct {
	Offset int64  // where the damage starts
	Length int64  // bytes passed over from there (0 for a cut-off record)
	Reason string // what was wrong, with its byte offset
	Cut    bool   // the file ends inside a record or block
}

func (e *damageError) Error() string { return e.Reason }

// Unwrap makes a cut-off record an io.ErrUnexpectedEOF.
func (e *damageError) Unwrap() error {
	if e.Cut {
		return io.ErrUnexpectedEOF
	}
	return nil
}
