package fhir

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The scanner must accept exactly what encoding/json accepts.
func TestScannerValidity(t *testing.T) {
	for _, doc := range []string{
		`{}`, `[]`, `"x"`, `0`, `-0`, `1.5e+3`, `-12.0E-1`, `true`, `false`, `null`, ` {"a" : [1, {"b":null}, "\u00e9\n"]} `,
		`{"a":1,}`, `[1,]`, `{"a" 1}`, `{a:1}`, `01`, `1.`, `.5`, `1e`, `+1`, `-`, `tru`, `nul`, `"\x"`, `"\u12"`, "\"a\tb\"",
		`{"a":1}}`, `[1 2]`, `{"a":1 "b":2}`, ``, ` `, `"`, `{"a":[}`, `[{]`, `{"a":1}x`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat("[", 100) + strings.Repeat("]", 100),
	} {
		s := &scanner{data: []byte(doc)}
		err := s.skip()
		if err == nil {
			err = s.end()
		}
		if got, want := err == nil, json.Valid([]byte(doc)); got != want {
			t.Errorf("%.40q: scanner valid %v, encoding/json %v", doc, got, want)
		}
	}
}

func TestFastInstantMatchesTimeParse(t *testing.T) {
	for _, v := range []string{
		"2024-05-01T12:00:00Z", "2024-05-01T12:00:00.1Z", "2024-05-01T12:00:00.123Z", "2024-05-01T12:00:00.123456789Z",
		"2024-02-29T23:59:59.999Z", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T12:60:00Z",
		"2024-05-01T12:00:60Z", "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00.1234567890Z", "2024-05-01T12:00:00+02:00",
		"2024-05-01T12:00:00.5-07:30", "2024-05-01 12:00:00Z", "2024-05-01T12:00:00z", "2024-05-01", "yesterday", "",
		"0000-01-01T00:00:00Z", "2024-04-31T00:00:00Z", "2024-05-01T12:00:0aZ",
	} {
		want, werr := time.Parse(time.RFC3339Nano, v)
		got, ok := parseInstant([]byte(v), false)
		if ok != (werr == nil) || ok && (!got.Equal(want) || got.Location() != time.UTC) {
			t.Errorf("%q: got %v %v, time.Parse %v %v", v, got, ok, want, werr)
		}
	}
}

// FuzzDecodeSearchPage checks the one-pass decoder against encoding/json: it fails on every
// invalid document, and each resource it returns is the exact bytes of an object whose
// resourceType, id and meta fields (matched case-sensitively) are the ones reported.
func FuzzDecodeSearchPage(f *testing.F) {
	f.Add(searchPage100(f, true)[:4000])
	for _, b := range []string{
		`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Observation","id":"a","meta":{"versionId":"1","lastUpdated":"2024-05-01T12:00:00Z"}}}]}`,
		`{"entry":[{"search":{"mode":"match"},"resource":{"meta":{"lastUpdated":"2024-05-01T12:00:00.5+01:00","versionId":"2"},"id":"b","resourceType":"Observation"}}],"type":"searchset","resourceType":"Bundle","total":1}`,
		`{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"x"}],"entry":[{"resource":{"resourceType":"Observation","id":"\u0061","ID":"z","meta":{"versionId":"1","lastUpdated":"2024-05-01T12:00:00Z"}}},{"resource":null},{"resource":5}]}`,
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, _, err := decodeSearchPage(body, "Observation", 1)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON")
		}
		for _, r := range p.Resources {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(r.Raw, &m); err != nil {
				t.Fatalf("Raw is not an object: %v", err)
			}
			var head struct {
				ResourceType string
				ID           string
				Meta         map[string]json.RawMessage
			}
			json.Unmarshal(m["resourceType"], &head.ResourceType)
			json.Unmarshal(m["id"], &head.ID)
			json.Unmarshal(m["meta"], &head.Meta)
			var vid, lu string
			json.Unmarshal(head.Meta["versionId"], &vid)
			json.Unmarshal(head.Meta["lastUpdated"], &lu)
			want, perr := time.Parse(time.RFC3339Nano, lu)
			if head.ResourceType != "Observation" || head.ID != r.ID || vid != r.VersionID || perr != nil || !want.Equal(r.LastUpdated) {
				t.Fatalf("resource %+v does not match its Raw", r)
			}
		}
	})
}
