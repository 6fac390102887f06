//go:build linux

package tlsprobe

import (
	"debug/elf"
	"encoding/binary"
	"strings"
)

// hashedSymbols looks names up in f's .gnu.hash table, the index the
// dynamic loader itself uses, and returns the functions among them that
// .dynsym defines. It reads a few entries instead of decoding the whole
// dynamic symbol table (55,000 symbols and 50–100 ms for node, time during
// which a program that was just exec'd runs unrecorded). ok is false when f
// has no usable table (no .gnu.hash, not 64-bit little-endian, or a table
// that does not add up): the caller then reads the tables in full.
// Undefined (imported) symbols are not in the hash table.
func hashedSymbols(f *elf.File, names []string) (defined map[string]elf.Symbol, ok bool) {
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB {
		return nil, false
	}
	hs, syms, strs := f.Section(".gnu.hash"), f.Section(".dynsym"), f.Section(".dynstr")
	if hs == nil || syms == nil || strs == nil || hs.Type == elf.SHT_NOBITS || syms.Type == elf.SHT_NOBITS || strs.Type == elf.SHT_NOBITS {
		return nil, false
	}
	le := binary.LittleEndian
	var hdr [16]byte
	if _, err := hs.ReadAt(hdr[:], 0); err != nil {
		return nil, false
	}
	nbuckets, symoffset, bloomSize := le.Uint32(hdr[0:]), le.Uint32(hdr[4:]), le.Uint32(hdr[8:])
	nsyms := syms.Size / 24
	if nbuckets == 0 || uint64(symoffset) > nsyms {
		return nil, false
	}
	buckets := 16 + 8*uint64(bloomSize)
	chain := buckets + 4*uint64(nbuckets)
	if chain > hs.Size {
		return nil, false
	}
	u32 := func(off uint64) (uint32, bool) {
		var b [4]byte
		if _, err := hs.ReadAt(b[:], int64(off)); err != nil {
			return 0, false
		}
		return le.Uint32(b[:]), true
	}
	defined = map[string]elf.Symbol{}
	var ent [24]byte
	name := make([]byte, 0, 64)
	for _, want := range names {
		h := uint32(5381)
		for i := 0; i < len(want); i++ {
			h = h*33 + uint32(want[i])
		}
		idx, ok := u32(buckets + 4*uint64(h%nbuckets))
		if !ok {
			return nil, false
		}
		for ; idx != 0 && idx >= symoffset && uint64(idx) < nsyms; idx++ {
			h2, ok := u32(chain + 4*uint64(idx-symoffset))
			if !ok {
				return nil, false
			}
			if h2|1 == h|1 {
				if _, err := syms.ReadAt(ent[:], int64(idx)*24); err != nil {
					return nil, false
				}
				if cap(name) < len(want)+1 {
					name = make([]byte, len(want)+1)
				}
				name = name[:len(want)+1]
				n, _ := strs.ReadAt(name, int64(le.Uint32(ent[0:])))
				if n == len(name) && string(name[:len(want)]) == want && name[len(want)] == 0 {
					s := elf.Symbol{
						Name: want, Info: ent[4], Other: ent[5], Section: elf.SectionIndex(le.Uint16(ent[6:])),
						Value: le.Uint64(ent[8:]), Size: le.Uint64(ent[16:]),
					}
					if s.Section != elf.SHN_UNDEF && elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
						defined[want] = s
					}
					break
				}
			}
			if h2&1 != 0 {
				break // end of the bucket's chain
			}
		}
	}
	return defined, true
}

// needsGnuTLS reports whether f loads libgnutls (GnuTLS's OpenSSL
// compatibility library does: its SSL_read is GnuTLS, probed as such).
func needsGnuTLS(f *elf.File) bool {
	libs, _ := f.ImportedLibraries()
	for _, l := range libs {
		if strings.HasPrefix(l, "libgnutls.so") {
			return true
		}
	}
	return false
}
