package fhir

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// searchPage100 is a 100-entry searchset of Observations about the size HealthLake returns:
// ~1 KB each, or ~1.6 KB with large.
func searchPage100(tb testing.TB, large bool) []byte {
	tb.Helper()
	entries := make([]map[string]any, 100)
	for i := range entries {
		o := obs(fmt.Sprintf("8f2c1e34-5b6a-4c7d-9e0f-%012d", i), "1", t0.Add(time.Duration(i)*time.Millisecond))
		o["subject"] = map[string]any{"reference": "Patient/1b3c5d7e-0000-4000-8000-000000000001"}
		o["effectiveDateTime"] = "2024-05-01T11:59:00Z"
		o["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}}, "text": "Heart rate"}
		o["valueQuantity"] = map[string]any{"value": 72, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"}
		o["category"] = []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}}}}
		o["text"] = map[string]any{"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Heart rate 72 beats/minute, measured at rest in the clinic.</div>"}
		if large {
			// About 1.5 KB: the fields a clinical system typically fills in, escapes included.
			o["identifier"] = []any{map[string]any{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.1.1", "value": fmt.Sprintf("OBS-%08d", i)}}
			o["encounter"] = map[string]any{"reference": "Encounter/5e6f7a8b-0000-4000-8000-000000000002"}
			o["performer"] = []any{map[string]any{"reference": "Practitioner/9a8b7c6d-0000-4000-8000-000000000003", "display": "Dr. Jane \"JJ\" Example"}}
			o["issued"] = "2024-05-01T11:59:30.123+00:00"
			o["interpretation"] = []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N", "display": "Normal"}}}}
			o["referenceRange"] = []any{map[string]any{"low": map[string]any{"value": 60, "unit": "/min"}, "high": map[string]any{"value": 100.5, "unit": "/min"}, "text": "60\u2013100 /min"}}
			o["note"] = []any{map[string]any{"text": "Patient relaxed; repeated after 5 minutes.\nNo arrhythmia noted. \u00e9\u00e8"}}
			o["meta"].(map[string]any)["profile"] = []any{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-vital-signs", "http://hl7.org/fhir/StructureDefinition/heartrate"}
			o["meta"].(map[string]any)["source"] = "#a1b2c3d4e5f6"
		}
		entries[i] = map[string]any{"fullUrl": "https://healthlake.us-east-1.amazonaws.com/datastore/" + testDS + "/r4/Observation/" + o["id"].(string), "resource": o, "search": map[string]any{"mode": "match"}}
	}
	body, err := json.Marshal(searchset("https://healthlake.us-east-1.amazonaws.com/datastore/"+testDS+"/r4/Observation?page=abc", entries...))
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

func TestDecodeSearchPage(t *testing.T) {
	body := searchPage100(t, true)
	p, b, err := decodeSearchPage(body, "Observation", 7)
	if err != nil {
		t.Fatal(err)
	}
	if p.Number != 7 || len(p.Resources) != 100 || p.Skipped != 0 || b.next() == "" {
		t.Fatalf("page %d, %d resources, %d skipped, next %q", p.Number, len(p.Resources), p.Skipped, b.next())
	}
	// Raw must not alias the page buffer: callers keep single resources past the page.
	for i := range body {
		body[i] = 'x'
	}
	var o map[string]any
	if err := json.Unmarshal(p.Resources[99].Raw, &o); err != nil || o["id"] != "8f2c1e34-5b6a-4c7d-9e0f-000000000099" {
		t.Errorf("Raw changed with the page buffer: %v", err)
	}
}

// BenchmarkDecodePage decodes a 100-resource page; ns/op divided by 100 is the cost per
// resource (issue 8's target: 8 µs).
func BenchmarkDecodePage(b *testing.B) {
	for _, large := range []bool{false, true} {
		body := searchPage100(b, large)
		b.Run(fmt.Sprintf("bytes=%d", len(body)/100), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				p, _, err := decodeSearchPage(body, "Observation", 1)
				if err != nil || len(p.Resources) != 100 {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/resource")
		})
	}
}
