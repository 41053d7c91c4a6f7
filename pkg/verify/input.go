package verify

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/simulate"
)

// Write is one manifest line: a FHIR write the producer made. The manifest's format is the
// simulate package's, declared once there.
type Write = simulate.ManifestEntry

func keyOf(w Write) resourceKey { return resourceKey{w.DatastoreID, w.ResourceType, w.ID} }

// via is how w was written; manifests from before via existed hold single REST writes.
func via(w Write) string { return cmp.Or(w.Via, simulate.ViaREST) }

type resourceKey struct{ datastore, resourceType, id string }

// readManifest decodes every manifest line. A bad line is an error: the manifest is ours, and
// verifying half of it would report a wrong result.
func readManifest(r io.Reader) ([]Write, error) {
	var writes []Write
	err := eachLine(r, func(n int, line []byte) error {
		var w Write
		if err := json.Unmarshal(line, &w); err != nil {
			return fmt.Errorf("manifest line %d: %w", n, err)
		}
		if w.DatastoreID == "" || w.ResourceType == "" || w.ID == "" || w.LastUpdated.IsZero() {
			return fmt.Errorf("manifest line %d: datastoreId, resourceType, id and lastUpdated are required", n)
		}
		switch w.Operation {
		case event.Create, event.Update, event.Delete:
		default:
			return fmt.Errorf("manifest line %d: operation %q is not create, update or delete", n, w.Operation)
		}
		switch via(w) {
		case simulate.ViaREST, simulate.ViaBatch, simulate.ViaTransaction, simulate.ViaImport:
		default:
			return fmt.Errorf("manifest line %d: via %q is not rest, batch, transaction or import", n, w.Via)
		}
		writes = append(writes, w)
		return nil
	})
	return writes, err
}

// eachLine calls fn with every non-blank line of r (without its newline), numbered from 1.
// Lines may be of any length: an event with a large resource is a long line.
func eachLine(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if ferr := fn(n, line); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
