// Package worker runs the domain's jobs (package dispatch declares them and
// their args): resolve a report's recipients into deliveries under the
// rules in force (ruleset.InForce, dispatch.PlanReport), send each email
// (compose it with its IHE_XDM.ZIP, hand it to SMTP with a fixed
// Message-ID, block an operator's domain or the submission server for a
// while after a temporary failure, and probe it meanwhile: Prober), follow a
// delivery up (the release of a delayed one, the acknowledgement deadlines
// that the watchdog sweeps from the deliveries every minute, the fallback
// of a failed one), and send the DPI the
// business acknowledgements it asked for through a dispatch.DPINotifier.
// Install registers them all with a process's River workers and gives the
// domain's Service, periodic jobs and Prober.
//
// Every change of a delivery goes through package dispatch's store (its
// state machine and history), in the transaction that completes the job;
// the workers' own SQL reads what a send needs and keeps the blocks of the
// mail domains and their probes.
package worker
