package mail

import (
	"strconv"
	"strings"
)

// DomainOf returns the domain of an address (or of a Message-ID), lower-cased.
func DomainOf(address string) string {
	_, d, _ := strings.Cut(address, "@")
	return strings.ToLower(d)
}

// envelopePrefix starts the DSN envelope id of every delivery's emails.
const envelopePrefix = "mssdispatch-"

// EnvelopeID is the DSN envelope id (ENVID) of a delivery's emails.
func EnvelopeID(deliveryID int64) string { return envelopePrefix + strconv.FormatInt(deliveryID, 10) }

// EnvelopeDelivery returns the delivery whose emails have the envelope id
// envID (EnvelopeID), and false when envID is not one of this service's.
func EnvelopeDelivery(envID string) (int64, bool) {
	id, ok := strings.CutPrefix(envID, envelopePrefix)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(id, 10, 64)
	return v, err == nil
}
