// Package queue owns the River plumbing: the client built from a Config, River's
// own schema migrations and checks, periodic jobs declared with cron specs, the
// job states that keep a unique job unique (ActiveStates), and the statements
// on River's table the service needs beyond River's API (WorkNow: many
// snoozed jobs made available at once). It also owns the identity of an
// instance among the processes sharing the database (Claim: its River
// client's ID, held by an advisory lock) and the rescue at start of the jobs
// its previous run left running (Instance.RescueOrphans), their SQL in
// store.go.
// It knows nothing of the jobs' meaning; packages dispatch, letters and auth
// declare and work them.
package queue
