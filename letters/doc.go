// Package letters runs the paper channel: the periodic job that puts the
// letters to print (the paper_pending deliveries) in batches, one per
// service, each rendered by package paper behind a summary sheet and
// handed to a Sink (AddBatches); and what the secretaries read and do of
// it (Desk): a delivery's letter, a selection of letters, the batches,
// their PDF and their posting, every reading of patient data in the audit
// log.
//
// The deliveries stay the domain's (package dispatch): a letter that
// cannot be made goes back to review, a duplicate is cancelled and the
// letters of a posted batch become paper_sent through dispatch.Transition,
// under the state machine's rules; dispatch.PutInBatch records that a
// letter is in a batch.
package letters
