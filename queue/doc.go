// Package queue owns the River plumbing: the client built from a Config, River's
// own schema migrations and checks, periodic jobs declared with cron specs, and
// the job states that keep a unique job unique (ActiveStates).
// It knows nothing of the jobs' meaning; packages dispatch, letters and auth
// declare and work them.
package queue
