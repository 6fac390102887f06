//go:build race

package pcapin

// raceSlowdown scales the time bounds of tests: the race detector makes
// this package's byte loops several times slower.
const raceSlowdown = 5
