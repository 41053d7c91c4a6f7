package simulate

import (
	"crypto/rand"
	"encoding/hex"
)

// NewDatastoreID returns a random datastore id (32 lower-case hex characters). The local FHIR
// server creates a datastore on first use, so a fresh id is an empty, private datastore.
func NewDatastoreID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
