package web

// CodeTables are the label tables of the codes the dashboard shows in
// French, by name, for the test that no code reaches a secretary raw.
var CodeTables = map[string]map[string]string{
	"status": statusLabels, "event": eventLabels, "reason": reasonLabels, "recipient role": recipientRoleLabels,
	"mailbox type": boxTypeLabels, "audit action": auditLabels, "batch": batchLabels,
}
