package simulate

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// newUUID returns a random (version 4) UUID, the shape of CloudTrail and EventBridge ids.
// Ids are random even in a seeded run: two runs must never share event ids.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// NewDatastoreID returns a random datastore id (32 lower-case hex characters). The local FHIR
// server creates a datastore on first use, so a fresh id is an empty, private datastore.
func NewDatastoreID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
