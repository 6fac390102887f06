//go:build linux

package tlsprobe

import (
	"bytes"
	"debug/elf"
	"fmt"
	"slices"
	"sort"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// Where a C function's probes go.
//
// A uprobe replaces one instruction with a breakpoint. After the probe's
// program runs, the kernel must carry out the instruction it replaced:
// branches (call, jmp, jcc) and pushes of a register it emulates in a few
// hundred nanoseconds; anything else it copies to a scratch page and
// single-steps, which costs a second trap — about 17 µs a call on the
// virtual machines we measured (0.5 µs for an emulated one), more than the
// TLS call itself. A uretprobe needs a probe at the function's entry too.
//
// OpenSSL 3's SSL_read and SSL_write begin with `sub $n,%rsp` and forward
// to internal functions (ssl_read_internal, ssl_write_internal) that begin
// with `push`. So the probes go where the kernel emulates the instruction:
//   - at the entry's first emulated instruction, past an endbr64 and past
//     up to maxSlide instructions that leave the connection, the buffer,
//     the out argument (followed if it moves) and the stack pointer alone;
//   - else, when the function is a wrapper that hands its arguments to an
//     internal function with an emulated first instruction, at that
//     function's entry, with the argument that receives the byte count
//     found by following the registers;
//   - else at the entry, as before (correct, only slower).

// maxWrapperInsts bounds the instructions read before a wrapper's call.
const maxWrapperInsts = 48

// endbr64 begins functions built with -fcf-protection (CET); it changes no
// register, so a probe may go after it.
var endbr64 = []byte{0xf3, 0x0f, 0x1e, 0xfa}

// hasEndbr64 reports whether code begins with an endbr64.
func hasEndbr64(code []byte) bool { return bytes.HasPrefix(code, endbr64) }

// maxSlide bounds the instructions an entry probe may move past.
const maxSlide = 4

// cheapEntry returns the offset into code (a Go function's first bytes) of
// the first instruction the kernel emulates, when every instruction before
// it is an endbr64 or one that writes neither the stack pointer nor a
// register of reads (the registers the entry program reads): the probe
// there sees the arguments and return address of the entry. ok is false
// when a single-stepped instruction comes first. C functions use
// cEntrySite, which also follows the out argument.
func cheapEntry(code []byte, reads []x86asm.Reg) (skip int, ok bool) {
	return slideTo(code, func(inst x86asm.Inst) bool {
		if !known(inst.Op) || inst.Op == x86asm.PUSH {
			return false
		}
		dst, writes := destination(inst)
		return !writes || family(dst) != x86asm.RSP && !slices.Contains(reads, family(dst))
	})
}

// slideTo returns the offset into code of its first emulated instruction,
// when at most maxSlide instructions come before it, each an endbr64 or
// one that pass accepts (pass sees them in order).
func slideTo(code []byte, pass func(x86asm.Inst) bool) (skip int, ok bool) {
	for n := 0; n <= maxSlide && skip < len(code); n++ {
		if hasEndbr64(code[skip:]) {
			skip += len(endbr64)
			continue
		}
		inst, err := x86asm.Decode(code[skip:], 64)
		if err != nil {
			return 0, false
		}
		if emulated(inst) {
			return skip, true
		}
		if !pass(inst) {
			return 0, false
		}
		skip += inst.Len
	}
	return 0, false
}

// slideAllowed reports whether an entry probe may go skip bytes into a
// function (code its first bytes, body all of it when known, else nil):
// past an endbr64 always; past other instructions only when no branch of
// the function (body returns all of it, or nil when its size is unknown;
// read only then) lands between its entry and the probe, which would then
// miss that path or fire twice on a loop.
func slideAllowed(code []byte, skip int, body func() []byte) bool {
	if skip == 0 || skip == len(endbr64) && hasEndbr64(code) {
		return true
	}
	b := body()
	return b != nil && !branchesInto(b, 0, skip)
}

// branchesInto reports whether a direct branch in code (a whole function)
// lands at an offset in (lo, hi]: an entry probe moved to hi would miss a
// path that enters there, or fire twice on a loop.
func branchesInto(code []byte, lo, hi int) bool {
	for pos := 0; pos < len(code); {
		inst, err := x86asm.Decode(code[pos:], 64)
		if err != nil || inst.Len == 0 {
			pos++ // data or padding: resynchronise byte by byte
			continue
		}
		pos += inst.Len
		if t, ok := branchTarget(inst, uint64(pos)); ok && int64(t) > int64(lo) && int64(t) <= int64(hi) {
			return true
		}
	}
	return false
}

// emulated reports whether the x86 kernel carries out inst for a uprobe
// without single-stepping it: direct calls and jumps, conditional jumps,
// and pushes of a 64-bit register.
func emulated(inst x86asm.Inst) bool {
	switch inst.Op {
	case x86asm.CALL, x86asm.JMP:
		_, direct := branchTarget(inst, 0)
		return direct
	case x86asm.PUSH:
		// The kernel emulates push %reg without a prefix, or with REX.B
		// alone (r8-r15): 50+r or 41 50+r.
		r, ok := inst.Args[0].(x86asm.Reg)
		return ok && r >= x86asm.RAX && r <= x86asm.R15 &&
			(inst.Len == 1 || inst.Len == 2 && inst.Prefix[0]&0xff == x86asm.PrefixREX|x86asm.PrefixREXB)
	}
	return conditionalJump(inst.Op)
}

// branchTarget returns where a direct call or jump (or conditional one)
// goes, next being the address after it; false for any other instruction.
func branchTarget(inst x86asm.Inst, next uint64) (uint64, bool) {
	rel, ok := inst.Args[0].(x86asm.Rel)
	return uint64(int64(next) + int64(rel)), ok
}

func conditionalJump(op x86asm.Op) bool {
	switch op {
	case x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JE, x86asm.JG, x86asm.JGE,
		x86asm.JL, x86asm.JLE, x86asm.JNE, x86asm.JNO, x86asm.JNP, x86asm.JNS, x86asm.JO,
		x86asm.JP, x86asm.JS:
		return true
	}
	return false
}

// What an argument register holds at a wrapper's call, in terms of the
// wrapper's own arguments.
type regValue uint8

const (
	valUnknown regValue      = iota
	valArg1                  // valArg1+i-1: the wrapper's argument i (1…6)
	valStack   = valArg1 + 6 // an address in the wrapper's frame
)

// argRegs are the System V argument registers, in order.
var argRegs = [6]x86asm.Reg{x86asm.RDI, x86asm.RSI, x86asm.RDX, x86asm.RCX, x86asm.R8, x86asm.R9}

// forward is a wrapper's hand-over: the function it calls with the
// wrapper's connection, buffer and length as its first three arguments.
type forward struct {
	target uint64 // address of the called function
	// outArg is the callee's 1-based argument that receives the byte count:
	// the wrapper's own out argument passed on, or, for a wrapper that
	// returns the count, the one pointer into the wrapper's frame.
	outArg uint8
	tail   bool // a jump: the callee returns to the wrapper's caller
}

// findForward follows the straight path through a wrapper at address va
// (code holds its first bytes; out is its own 1-based out argument, 0 when
// it returns the count) to its first direct call or jump, tracking what
// the argument registers hold. ok is false when an instruction it does not
// model comes first, the call's arguments are not the wrapper's
// connection, buffer and length with exactly one place for the count, or a
// conditional branch on the way may lead anywhere but out of the wrapper:
// exits reports whether the path a branch takes leaves the function
// without other work (an argument check's error return). Without that
// check a wrapper that tests something (OpenSSL 3.2's QUIC connections,
// inlined) and calls a helper on one side would be followed into the
// helper, and its ordinary calls missed.
func findForward(code []byte, va uint64, out uint8, exits func(target uint64) bool) (fw forward, ok bool) {
	st := newArgState()
	pos := 0
	for n := 0; n < maxWrapperInsts && pos < len(code); n++ {
		if hasEndbr64(code[pos:]) {
			pos += len(endbr64)
			continue
		}
		inst, err := x86asm.Decode(code[pos:], 64)
		if err != nil {
			return forward{}, false
		}
		next := va + uint64(pos+inst.Len)
		pos += inst.Len
		switch {
		case inst.Op == x86asm.CALL || inst.Op == x86asm.JMP:
			target, direct := branchTarget(inst, next)
			if !direct {
				return forward{}, false
			}
			fw := forward{target: target, tail: inst.Op == x86asm.JMP}
			if fw.tail && (st.stackMoved || out == 0) {
				// A jump out of a frame is no tail call; and a tail
				// call cannot hand over a place in a frame it leaves.
				return forward{}, false
			}
			fw.outArg, ok = handedOver(st.regs, out)
			return fw, ok
		case conditionalJump(inst.Op):
			if target, direct := branchTarget(inst, next); !direct || !exits(target) {
				return forward{}, false
			}
			continue // the fall-through path is the call's
		}
		if !st.step(inst) {
			return forward{}, false
		}
	}
	return forward{}, false
}

// maxExitInsts bounds the instructions exitPath follows, over all paths.
const maxExitInsts = 96

// exitPath reports whether every path from the code at va returns from
// its function within maxExitInsts instructions in all, calling nothing but
// through the PLT (isPLT): the error return of a wrapper's argument check,
// which reports through another library (OpenSSL's ERR_new, ERR_set_error).
// It follows direct jumps and both sides of conditional ones, except the
// side a failed stack guard takes (a branch right after reading %fs:0x28
// goes to __stack_chk_fail, which does not return); read returns the code
// at an address, nil when there is none.
func exitPath(read func(va uint64) []byte, isPLT func(va uint64) bool, va uint64) bool {
	budget := maxExitInsts
	seen := map[uint64]bool{}
	var walk func(va uint64) bool
	walk = func(va uint64) bool {
		seen[va] = true
		code, base, pos := read(va), va, 0
		guard := false // the previous instruction read the stack guard
		for ; budget > 0; budget-- {
			if pos >= len(code) {
				return false
			}
			inst, err := x86asm.Decode(code[pos:], 64)
			if err != nil {
				return false
			}
			pos += inst.Len
			target, direct := branchTarget(inst, base+uint64(pos))
			switch {
			case inst.Op == x86asm.RET:
				return true
			case inst.Op == x86asm.CALL:
				if !direct || !isPLT(target) {
					return false
				}
			case inst.Op == x86asm.JMP:
				if !direct || seen[target] {
					return false // indirect, or a loop with no way out
				}
				seen[target] = true
				code, base, pos = read(target), target, 0
			case conditionalJump(inst.Op):
				// A side already seen is being checked on another path.
				if !guard && !seen[target] && !walk(target) {
					return false
				}
			}
			guard = readsStackGuard(inst)
		}
		return false
	}
	return walk(va)
}

// readsStackGuard reports whether inst reads the stack protector's canary,
// %fs:0x28 on x86-64 Linux.
func readsStackGuard(inst x86asm.Inst) bool {
	for _, a := range inst.Args {
		if m, ok := a.(x86asm.Mem); ok && m.Segment == x86asm.FS && m.Base == 0 && m.Index == 0 && m.Disp == 0x28 {
			return true
		}
	}
	return false
}

// argState is what the argument registers hold, in terms of a function's
// own arguments, as its instructions run in order from its entry, and
// whether the stack pointer moved.
type argState struct {
	regs       [6]regValue
	stackMoved bool
}

func newArgState() argState {
	var st argState
	for i := range st.regs {
		st.regs[i] = valArg1 + regValue(i)
	}
	return st
}

// step follows one instruction that is no branch; false for one it does
// not model.
func (st *argState) step(inst x86asm.Inst) bool {
	dst, writes := destination(inst)
	if !writes {
		return known(inst.Op)
	}
	if family(dst) == x86asm.RSP {
		st.stackMoved = true
		return true
	}
	if idx := argIndex(dst); idx >= 0 {
		st.regs[idx] = valueAfter(inst, st.regs)
	}
	return true
}

// cEntrySite is cheapEntry for a C function with out argument out (0:
// none), following the argument registers: the probe may move past
// instructions that copy the out argument to another register (OpenSSL
// 3.5's SSL_write_ex: mov %rcx,%r8; xor %ecx,%ecx; jmp SSL_write_ex2) as
// long as the connection and buffer stay where they were and the stack
// pointer does not move. siteOut is where the out argument is at the
// probe (4 or 5; 0 when out is 0).
func cEntrySite(code []byte, out uint8) (skip int, siteOut uint8, ok bool) {
	st := newArgState()
	skip, ok = slideTo(code, func(inst x86asm.Inst) bool {
		return inst.Op != x86asm.PUSH && st.step(inst) && !st.stackMoved
	})
	if !ok || st.regs[0] != valArg1 || st.regs[1] != valArg1+1 {
		return 0, 0, false
	}
	if out == 0 {
		return skip, 0, true
	}
	want := valArg1 + regValue(out-1)
	switch {
	case st.regs[3] == want && st.regs[4] != want:
		return skip, 4, true
	case st.regs[4] == want && st.regs[3] != want:
		return skip, 5, true
	}
	return 0, 0, false
}

// handedOver checks the registers at a call and returns the callee's
// argument that receives the byte count.
func handedOver(regs [6]regValue, out uint8) (uint8, bool) {
	for i := 0; i < 3; i++ {
		if regs[i] != valArg1+regValue(i) {
			return 0, false
		}
	}
	want := valStack
	if out != 0 {
		want = valArg1 + regValue(out-1)
	}
	found := uint8(0)
	for i := 3; i < len(regs); i++ {
		if regs[i] == want {
			if found != 0 {
				return 0, false // two candidates: do not guess
			}
			found = uint8(i + 1)
		}
	}
	return found, found == 4 || found == 5
}

// known lists the instructions findForward may pass that write no
// argument register and no stack pointer when their first operand is
// memory or another register (stores, compares, the stack guard's loads).
func known(op x86asm.Op) bool {
	switch op {
	case x86asm.MOV, x86asm.MOVSXD, x86asm.MOVZX, x86asm.MOVSX, x86asm.LEA, x86asm.XOR,
		x86asm.ADD, x86asm.SUB, x86asm.AND, x86asm.OR, x86asm.TEST, x86asm.CMP,
		x86asm.NOP, x86asm.PUSH:
		return true
	}
	return false
}

// destination returns the register inst writes (RSP for a push); false
// for no register write and for instructions known does not list.
func destination(inst x86asm.Inst) (x86asm.Reg, bool) {
	switch inst.Op {
	case x86asm.TEST, x86asm.CMP, x86asm.NOP:
		return 0, false
	case x86asm.PUSH:
		return x86asm.RSP, true
	}
	if !known(inst.Op) {
		return 0, false
	}
	r, ok := inst.Args[0].(x86asm.Reg)
	return r, ok
}

// valueAfter is what the destination register of inst holds after it.
func valueAfter(inst x86asm.Inst, regs [6]regValue) regValue {
	dst, _ := inst.Args[0].(x86asm.Reg)
	switch inst.Op {
	case x86asm.MOV:
		src, ok := inst.Args[1].(x86asm.Reg)
		if !ok || !wide(dst) || !wide(src) {
			return valUnknown
		}
		if src == x86asm.RSP {
			return valStack
		}
		if i := argIndex(src); i >= 0 {
			return regs[i]
		}
	case x86asm.MOVSXD:
		// The int length of SSL_read widened to the size_t of the
		// internal function: still the wrapper's length.
		if src, ok := inst.Args[1].(x86asm.Reg); ok && wide(dst) {
			if i := argIndex(src); i >= 0 {
				return regs[i]
			}
		}
	case x86asm.LEA:
		if m, ok := inst.Args[1].(x86asm.Mem); ok && wide(dst) && m.Base == x86asm.RSP && m.Index == 0 && m.Segment == 0 {
			return valStack
		}
	}
	return valUnknown
}

// wide reports whether r is a 64-bit general register.
func wide(r x86asm.Reg) bool { return r >= x86asm.RAX && r <= x86asm.R15 }

// argIndex is the 0-based argument position of r's 64-bit register, or -1.
func argIndex(r x86asm.Reg) int {
	f := family(r)
	for i, a := range argRegs {
		if a == f {
			return i
		}
	}
	return -1
}

// family maps a general register of any width to its 64-bit register.
func family(r x86asm.Reg) x86asm.Reg {
	switch {
	case r >= x86asm.RAX && r <= x86asm.R15:
		return r
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return x86asm.RAX + (r - x86asm.EAX)
	case r >= x86asm.AX && r <= x86asm.R15W:
		return x86asm.RAX + (r - x86asm.AX)
	case r >= x86asm.AL && r <= x86asm.BL:
		return x86asm.RAX + (r - x86asm.AL)
	case r >= x86asm.AH && r <= x86asm.BH:
		return x86asm.RAX + (r - x86asm.AH)
	case r >= x86asm.SPB && r <= x86asm.DIB:
		return x86asm.RSP + (r - x86asm.SPB)
	case r >= x86asm.R8B && r <= x86asm.R15B:
		return x86asm.R8 + (r - x86asm.R8B)
	}
	return r
}

// site is where one C function's probe pair goes.
type site struct {
	va     uint64
	dir    uint8
	out    uint8
	names  []string // the API functions it reports for
	inside bool     // an internal function the API functions forward to
}

// placeC returns the entry and return probes for the functions of funcs
// that f defines. follow allows moving a probe into the internal function a
// wrapper forwards to (OpenSSL, whose internal functions take the same
// arguments and report the count through their out argument). OpenSSL's
// SSL BIO calls those internal functions too (bio_ssl.c), so BIO_read and
// BIO_write on one are recorded as well, under the wrapper's name: the
// same connection's plaintext, which probes on the API functions miss.
func placeC(f *elf.File, defined map[string]elf.Symbol, funcs []cFunc, follow bool) ([]Probe, error) {
	// The file's exported functions: a wrapper is not followed into one.
	// Without a dynamic symbol table (a static program) nothing tells an
	// internal function from another library's, so none is followed.
	exported := map[uint64]bool{}
	if follow {
		syms, err := f.DynamicSymbols()
		for _, s := range syms {
			if s.Section != elf.SHN_UNDEF && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
				exported[s.Value] = true
			}
		}
		follow = err == nil && len(exported) > 0
	}
	var plt [][2]uint64 // the PLT sections' address ranges
	for _, sec := range f.Sections {
		if sec.Name == ".plt" || sec.Name == ".plt.sec" || sec.Name == ".plt.got" {
			plt = append(plt, [2]uint64{sec.Addr, sec.Addr + sec.Size})
		}
	}
	isPLT := func(va uint64) bool {
		for _, r := range plt {
			if r[0] <= va && va < r[1] {
				return true
			}
		}
		return false
	}
	exits := func(va uint64) bool {
		return exitPath(func(va uint64) []byte {
			b, _ := readCode(f, va)
			return b
		}, isPLT, va)
	}
	probed := map[uint64]cFunc{}
	for _, fn := range funcs {
		if s, ok := defined[fn.name]; ok {
			probed[s.Value] = fn
		}
	}
	// place returns where the entry probe of a function at va goes and
	// where its out argument is there; cheap is false for the entry
	// itself, single-stepped.
	place := func(va, size uint64, code []byte, out uint8) (at uint64, siteOut uint8, cheap bool) {
		body := func() []byte {
			if size == 0 || size > 1<<16 {
				return nil
			}
			b, _ := readVA(f, va, size)
			return b
		}
		skip, siteOut, ok := cEntrySite(code, out)
		if !ok || !slideAllowed(code, skip, body) {
			return va, out, false
		}
		return va + uint64(skip), siteOut, true
	}
	// inside returns the site in the internal function the wrapper fn at
	// va forwards to; ok is false when there is none to use, and none then
	// says that fn hands over to another probed API function with its out
	// argument in place, whose probes report its calls.
	inside := func(fn cFunc, va uint64, code []byte) (t site, ok, none bool) {
		fw, ok := findForward(code, va, fn.out, exits)
		if !ok || fw.target == va {
			return site{}, false, false
		}
		if g, isProbed := probed[fw.target]; isProbed {
			// SSL_write_ex handing over to SSL_write_ex2.
			return site{}, false, g.dir == fn.dir && g.out == fw.outArg
		}
		if exported[fw.target] {
			// An API function of its own (BoringSSL's SSL_read calls
			// SSL_peek): probing it would report its other callers' data.
			return site{}, false, false
		}
		tcode, _ := readCode(f, fw.target)
		at, out, cheap := place(fw.target, 0, tcode, fw.outArg)
		return site{va: at, dir: fn.dir, out: out, names: []string{fn.name}, inside: true}, cheap, false
	}
	var sites []site
	fallback := map[string]site{}
	for _, fn := range funcs {
		s, ok := defined[fn.name]
		if !ok {
			continue
		}
		// Code this cannot read (nil) is probed at its entry, as a
		// library without placement would be.
		code, _ := readCode(f, s.Value)
		at, out, cheap := place(s.Value, s.Size, code, fn.out)
		mine := site{va: at, dir: fn.dir, out: out, names: []string{fn.name}}
		fallback[fn.name] = mine
		if cheap || !follow {
			sites = append(sites, mine)
			continue
		}
		switch t, ok, none := inside(fn, s.Value, code); {
		case ok:
			sites = append(sites, t)
		case !none:
			sites = append(sites, mine)
		}
	}
	// One pair per address; wrappers that disagree on what an internal
	// function's arguments mean keep their own probes.
	byVA := map[uint64]*site{}
	conflict := map[uint64]bool{}
	var order []uint64
	for i := range sites {
		s := &sites[i]
		if o, ok := byVA[s.va]; ok {
			if o.dir != s.dir || o.out != s.out {
				conflict[s.va] = true
			}
			o.names = append(o.names, s.names...)
			continue
		}
		byVA[s.va] = s
		order = append(order, s.va)
	}
	var final []site
	for _, va := range order {
		s := byVA[va]
		if conflict[va] && s.inside {
			for _, n := range s.names {
				final = append(final, fallback[n])
			}
			continue
		}
		final = append(final, *s)
	}
	sort.SliceStable(final, func(i, j int) bool { return final[i].va < final[j].va })
	var probes []Probe
	for _, s := range final {
		name := strings.Join(s.names, ",")
		if s.inside {
			name += ">internal"
		}
		off, err := fileOffset(f, s.va)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		probes = append(probes,
			Probe{Symbol: name, Offset: off, Kind: Entry, Dir: s.dir, OutArg: s.out},
			Probe{Symbol: name, Offset: off, Kind: Return, Dir: s.dir, OutArg: s.out})
	}
	return probes, nil
}

// readCode returns up to 256 bytes of code at va, fewer at the end of its
// section.
func readCode(f *elf.File, va uint64) ([]byte, error) {
	for _, s := range f.Sections {
		if s.Type == elf.SHT_PROGBITS && s.Flags&elf.SHF_EXECINSTR != 0 && s.Addr <= va && va < s.Addr+s.Size {
			return readVA(f, va, min(s.Addr+s.Size-va, 256))
		}
	}
	return nil, fmt.Errorf("address %#x is in no code section", va)
}
