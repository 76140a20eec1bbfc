// Package desk is what people do to a delivery from the dashboard: approve
// it (or send it at once), send it to an address they chose, hold it,
// cancel it, resend a failed email, record a letter posted or come back,
// make a letter of an email, correct where it goes, and add a recipient the
// DPI did not list. Each action is one transaction that changes the
// delivery through package dispatch's store and state machine
// (dispatch.Act, dispatch.Transition, dispatch.Release…), records the
// change in its history with the person as actor, and writes its audit
// entry; an action the delivery's status does not allow fails with
// dispatch.ErrTransition.
//
// An email never leaves the MSSanté trust space: an address a person
// approves, chooses, edits or adds is checked with the resolver (a
// *RecipientError otherwise), as the send job checks it again when the
// email goes. The acknowledgements (DSN, MDN) are not a person's:
// dispatch.Service.Acknowledge records them.
package desk
