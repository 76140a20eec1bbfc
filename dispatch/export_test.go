package dispatch

import "slices"

// Transitions returns, for each status, the statuses a delivery may move to
// ("" is a delivery being created), for the tests of package dispatch_test.
func Transitions() map[Status][]Status {
	out := make(map[Status][]Status, len(transitions))
	for from, to := range transitions {
		out[from] = slices.Clone(to)
	}
	return out
}
