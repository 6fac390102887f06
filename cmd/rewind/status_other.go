//go:build !windows

package main

import "os"

// enableANSI reports whether the terminal behind f interprets ANSI escapes;
// Unix terminals do.
func enableANSI(*os.File) bool { return true }
