package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// captureExts are the file names a directory's captures have: rewind
// captures, pcap and pcapng, each possibly gzip- or zstd-compressed.
var captureExts = []string{".rwd", ".pcap", ".pcapng", ".cap"}

// isCaptureName reports whether a file in a directory is taken as an input.
func isCaptureName(name string) bool {
	for _, c := range []string{".gz", ".zst"} {
		name = strings.TrimSuffix(name, c)
	}
	return slices.Contains(captureExts, strings.ToLower(filepath.Ext(name)))
}

// expandInputs turns analyze's or diff's arguments into input files:
// files as given, directories as every capture in and below them (by name:
// .rwd, .pcap, .pcapng, .cap, also .gz or .zst), and glob patterns the
// shell left alone (quoted, or matching nothing there) as their matches.
// The result is sorted, and a file named twice is there once, so that an
// analysis does not depend on the arguments' order or overlap. skipped lists files of the directories that were
// passed over because of their names. "-" (standard input) must be alone.
func expandInputs(args []string) (paths, skipped []string, err error) {
	if len(args) == 0 {
		return nil, nil, usagef("no input given: name a capture file, a directory of captures, or - for standard input")
	}
	if slices.Contains(args, "-") {
		if len(args) > 1 {
			return nil, nil, usagef("standard input (-) can only be the one input: give several inputs as files or directories")
		}
		return args, nil, nil
	}
	for _, a := range args {
		st, statErr := os.Stat(a)
		switch {
		case statErr == nil && st.IsDir():
			found := 0
			err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if strings.HasPrefix(d.Name(), ".") && p != a {
					// Hidden: temporary files (ours too) and their directories.
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
				if d.IsDir() || !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
					return nil
				}
				if !isCaptureName(d.Name()) {
					skipped = append(skipped, p)
					return nil
				}
				paths = append(paths, p)
				found++
				return nil
			})
			if err != nil {
				return nil, nil, fmt.Errorf("reading directory %s: %w", a, err)
			}
			if found == 0 {
				return nil, nil, usagef("directory %s holds no capture (files named *.rwd, *.pcap, *.pcapng or *.cap, also .gz or .zst)", a)
			}
		case statErr == nil:
			paths = append(paths, a)
		case strings.ContainsAny(a, "*?["):
			m, err := filepath.Glob(a)
			if err != nil {
				return nil, nil, usagef("pattern %q: %v", a, err)
			}
			if len(m) == 0 {
				return nil, nil, usagef("no file matches %s", a)
			}
			paths = append(paths, m...)
		default:
			return nil, nil, statErr
		}
	}
	slices.Sort(paths)
	// A file named twice (a/x.rwd given and inside a/ given too, or under
	// two names such as a/x.rwd and a/../a/x.rwd) is one input: it counts
	// once, under the first of its names.
	var out []string
	var infos []os.FileInfo
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, nil, err
		}
		if !slices.ContainsFunc(infos, func(o os.FileInfo) bool { return os.SameFile(o, st) }) {
			out, infos = append(out, p), append(infos, st)
		}
	}
	return out, skipped, nil
}
