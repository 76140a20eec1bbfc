package dashboard

// CodeTables are the label tables of the codes the dashboard shows in
// French, by name, for the test that no code reaches a secretary raw.
var CodeTables = map[string]map[string]string{
	"status": stringKeys(statusLabels), "event": stringKeys(eventLabels), "reason": stringKeys(reasonLabels), "recipient role": recipientRoleLabels,
	"mailbox type": boxTypeLabels, "audit action": auditLabels, "batch": batchLabels,
}

// stringKeys is labels keyed by the codes' strings.
func stringKeys[Code ~string](labels map[Code]string) map[string]string {
	out := make(map[string]string, len(labels))
	for c, l := range labels {
		out[string(c)] = l
	}
	return out
}
