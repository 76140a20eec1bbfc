// Package queue owns the River plumbing: the client built from a Config, River's
// own schema migrations and checks, periodic jobs declared with cron specs, the
// job states that keep a unique job unique (ActiveStates), and the statements
// on River's table the service needs beyond River's API (WorkNow: many
// snoozed jobs made available at once).
// It knows nothing of the jobs' meaning; packages dispatch, letters and auth
// declare and work them.
package queue
