-- Issue #23: while a scope (a recipient's domain, or '*', the submission
-- server) is blocked after temporary failures, one prober among the
-- instances checks every few seconds whether it accepts again, and the
-- first success unblocks it. next_probe_at is when it may next be probed:
-- a prober claims the scope by moving it past the probe's timeout (so that
-- no other probes it meanwhile, and a prober that died is replaced), and
-- puts it one probe interval ahead when its probe ends. NULL: never probed.
ALTER TABLE mail_domains ADD COLUMN next_probe_at timestamptz;
