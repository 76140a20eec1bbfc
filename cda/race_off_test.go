//go:build !race

package cda_test

// raceEnabled reports whether the tests run with the race detector, which
// makes the runtime allocate more.
const raceEnabled = false
