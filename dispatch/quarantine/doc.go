// Package quarantine is the read side of the messages the intake refused
// and what users do with them: the dashboard's list (List, the patient
// data only for the viewers of the message's service), their bytes (Raw),
// setting one aside (Dismiss), and taking one up again once its cause is
// fixed (Requeue: the HL7 intake runs it through again, and the Requeued
// records what it becomes, through dispatch.Service.ReceiveVia when
// accepted). Putting a message in quarantine is the intake's, part of
// receiving: dispatch.Service.Reject, with dispatch.Refusal.
package quarantine
