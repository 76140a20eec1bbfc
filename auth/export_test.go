package auth

import "context"

// CheapHashing makes s hash new passwords with the cheapest parameters, so
// that tests logging in many times stay fast; the parameters of stored hashes
// are still read from them.
func CheapHashing(s *Store) {
	s.setParams(hashParams{memory: 64, time: 1, threads: 1, saltLen: 16, keyLen: 32})
}

// DefaultHashing restores the parameters of NewStore.
func DefaultHashing(s *Store) {
	s.setParams(defaultParams)
}

// RunPurgeJob works one PurgeArgs job for s, as River would.
func RunPurgeJob(ctx context.Context, s *Sessions) error {
	return (&purgeWorker{sessions: s}).Work(ctx, nil)
}
