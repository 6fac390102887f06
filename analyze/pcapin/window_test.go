package pcapin

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// TestWindowBlocks: a window over a readAhead, which uses the blocks in
// place, hands out the same bytes, errors, offsets and counts as one over a
// plain reader, for requests short and long (longer than a block's room
// and than a block), consumed in full or in part, to the end of the input.
func TestWindowBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	data := make([]byte, 3*readAheadBlock+12345)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 3))
		// Odd seeds' input fails at its end instead of ending.
		src := func() io.Reader {
			if seed%2 == 1 {
				return io.MultiReader(bytes.NewReader(data), failing{})
			}
			return bytes.NewReader(data)
		}
		plain := newWindow(src())
		ra := newReadAhead(src())
		blocks := newWindow(ra)
		if blocks.blocks == nil {
			t.Fatal("the window does not read the readAhead's blocks")
		}
		for step := 0; ; step++ {
			var n int
			switch r.IntN(10) {
			case 0:
				n = readAheadRoom + r.IntN(2*readAheadBlock) // past the room, maybe past a block
			case 1, 2:
				n = 1 + r.IntN(4096)
			default:
				n = 1 + r.IntN(64)
			}
			a, errA := plain.need(n)
			b, errB := blocks.need(n)
			if !bytes.Equal(a, b) || (errA == nil) != (errB == nil) || errA != nil && errA.Error() != errB.Error() {
				t.Fatalf("seed %d step %d: need(%d) = %d bytes, %v; over blocks %d bytes, %v", seed, step, n, len(a), errA, len(b), errB)
			}
			// The buffers differ in size, so they hold different counts
			// of bytes, except once the input is all read.
			if plain.pos != blocks.pos || errA != nil && plain.buffered() != blocks.buffered() {
				t.Fatalf("seed %d step %d: pos %d buffered %d; over blocks pos %d buffered %d", seed, step, plain.pos, plain.buffered(), blocks.pos, blocks.buffered())
			}
			if errA == io.EOF || errA != nil && !errors.Is(errA, io.ErrUnexpectedEOF) {
				break
			}
			if errA != nil {
				// Fewer than n bytes left: take them one by one.
				plain.consume(1)
				blocks.consume(1)
				continue
			}
			c := n
			if r.IntN(3) == 0 {
				c = r.IntN(n + 1)
			}
			plain.consume(c)
			blocks.consume(c)
		}
		ra.Close()
	}
}

// failing is a reader that fails.
type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("the disk is on fire") }
