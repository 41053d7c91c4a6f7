package cloudtrail

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The hand-written decoder must decide every input exactly as the encoding/json one did
// (refDecide in reference_test.go): same Outcome, Reason, Detail and Change, for valid and
// invalid JSON alike. These tests compare the two on the fixtures, on records built to hit
// encoding/json's less obvious rules, and (fuzzing) on anything.

// TestDecideMatchesReference runs in every test run, so a difference found once by the fuzzer
// stays covered once its input is added to trickyRecords.
func TestDecideMatchesReference(t *testing.T) {
	open, restricted := mustValidator(t), mustValidator(t, storeA, storeB)
	for i, data := range referenceSeeds(t) {
		for _, v := range []*Validator{open, restricted} {
			if got, want := v.Decide(data), refDecide(v, data); got != want {
				t.Errorf("input %d (%.80q...):\n got %+v\nwant %+v", i, data, got, want)
			}
		}
	}
}

// FuzzDecideMatchesReference: for any data, Decide and the encoding/json reference agree.
func FuzzDecideMatchesReference(f *testing.F) {
	for _, data := range referenceSeeds(f) {
		f.Add(data)
	}
	open, restricted := mustValidator(f), mustValidator(f, storeA, storeB)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []*Validator{open, restricted} {
			if got, want := v.Decide(data), refDecide(v, data); got != want {
				t.Fatalf("%.200q:\n got %+v\nwant %+v", data, got, want)
			}
		}
	})
}

// referenceSeeds: every fixture, every line of the burst, and trickyRecords.
func referenceSeeds(t testing.TB) [][]byte {
	t.Helper()
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b := readTestdata(t, e.Name())
		out = append(out, b)
		if strings.HasSuffix(e.Name(), ".jsonl") {
			out = append(out, bytes.Split(bytes.TrimSpace(b), []byte("\n"))...)
		}
	}
	return append(out, trickyRecords(t)...)
}

// trickyRecords are good records changed where encoding/json has rules of its own: keys matched
// case-insensitively (with Unicode folding) and after unescaping, the last of duplicate keys
// winning (and the API call's detail merged across duplicates), escapes in values, number
// forms, nesting depth, time forms time.Parse accepts or refuses, and syntax errors.
func trickyRecords(t testing.TB) [][]byte {
	t.Helper()
	create := bytes.TrimSpace(readTestdata(t, "burst-50.jsonl"))
	create = bytes.Clone(create[:bytes.IndexByte(create, '\n')]) // one compact CreateResource record
	imp := compact(t, readTestdata(t, "import-completed.json"))

	// join returns a new slice: appending to a seed would write into its backing array.
	join := func(b []byte, s string) []byte { return append(bytes.Clone(b), s...) }
	// swap replaces the first old with new in b; old must be there, so a seed cannot
	// silently stop testing what it was made for.
	swap := func(b []byte, pairs ...string) []byte {
		t.Helper()
		for i := 0; i < len(pairs); i += 2 {
			if !bytes.Contains(b, []byte(pairs[i])) {
				t.Fatalf("seed: %q not in %.60q", pairs[i], b)
			}
			b = bytes.Replace(b, []byte(pairs[i]), []byte(pairs[i+1]), 1)
		}
		return b
	}
	const (
		src    = `"source":"aws.healthlake"`
		det    = `"detail":{`
		evTime = `"eventTime":"2026-11-20T09:16:00Z"`
		status = `"statusCode":201`
		ds     = `"datastoreId":"a1b2c3d4e5f60718293a4b5c6d7e8f90"`
	)
	out := [][]byte{
		// Keys: case folding, Unicode folding (ſ folds to s, K to k), escapes.
		swap(create, src, `"SOURCE":"aws.healthlake"`),
		swap(create, src, `"ſource":"aws.healthlake"`),
		swap(create, src, `"\u0073ource":"aws.healthlake"`),
		swap(create, src, `"\u017fource":"aws.healthlake"`),
		swap(create, src, `"sourcex":"aws.healthlake"`),
		swap(create, src, "\"s\xffource\":\"aws.healthlake\""),
		swap(create, `"eventName"`, `"EventNAME"`),
		swap(create, `"datastoreId"`, `"DatastoreID"`),
		swap(create, `"statusCode"`, `"ſtatuſCode"`),
		swap(create, `"requestParameters"`, `"REQUESTPARAMETERS"`),
		swap(create, `"detail-type"`, `"Detail-Type"`),
		swap(create, `"detail":`, `"DETAIL":`),
		swap(create, `"account"`, `"\u0061ccount"`),
		swap(imp, `"jobId"`, `"JOBID"`),
		swap(imp, `"submitTime"`, `"ſubmitTime"`),
		// Duplicates: the last wins; the API call's detail is merged, a null resets it.
		swap(create, src, `"source":"aws.s3",`+src),
		swap(create, src, src+`,"source":"aws.s3"`),
		swap(create, src, src+`,"source":null`),
		swap(create, src, `"detail":{"eventName":"ReadResource","errorCode":"X"},`+src),
		swap(create, src, `"detail":{"eventName":"ReadResource"},"detail":null,`+src),
		swap(create, src, `"detail":"x",`+src),
		swap(create, src, `"detail":[],`+src),
		swap(create, src, `"detail":7,`+src),
		join(create[:len(create)-1], `,"detail":{"eventName":"DeleteResource"}}`),
		join(create[:len(create)-1], `,"detail":{"requestParameters":{"resourceType":"Patient"}}}`),
		join(create[:len(create)-1], `,"detail":null}`),
		join(create[:len(create)-1], `,"detail":true}`),
		swap(create, ds, ds+`,"datastoreId":"095d2262da454bb7347488c930e009eb"`),
		swap(create, status, status+`,"statusCode":"201"`),
		swap(create, `"detail-type":"AWS API Call via CloudTrail"`, `"detail-type":"Import Job Completed","detail-type":"AWS API Call via CloudTrail"`),
		swap(imp, `"detail":{`, `"detail":{"jobId":"x"},"detail":{`),
		join(imp[:len(imp)-1], `,"detail":{"datastoreId":"095d2262da454bb7347488c930e009eb"}}`),
		join(imp[:len(imp)-1], `,"detail":"x"}`),
		join(imp[:len(imp)-1], `,"detail":null}`),
		// Escapes and odd bytes in values.
		swap(create, src, `"source":"aws.health\u006cake"`),
		swap(create, `"CreateResource"`, `"Create\u0052esource"`),
		swap(create, `"CreateResource"`, `"Create\uD800Resource"`),
		swap(create, `"CreateResource"`, "\"Create\xffResource\""),
		swap(create, `"CreateResource"`, "\"CreateRes\xc3\xb3urce\""),
		swap(create, `"CreateResource"`, `"SearchWith\u00ff"`),
		swap(create, `"Patient"`, `"Pat\u0069ent"`),
		swap(create, `"Patient"`, `"Patient\/x"`),
		swap(create, ds, `"datastoreId":"a1b2c3d4e5f60718293a4b5c6d7e8f9\u0030"`),
		swap(create, evTime, `"eventTime":"2026-11-20T09:16:00\u005a"`),
		swap(create, `"region":"us-west-2"`, `"region":"us-west-\u0032"`),
		swap(create, `"detail-type":"AWS API Call via CloudTrail"`, `"detail-type":"AWS API Call via CloudTrail\u0000"`),
		swap(create, `"detail-type":"AWS API Call via CloudTrail"`, `"detail-type":"Import Job Completed With Error\u0073"`),
		// Number forms and types of statusCode and other fields.
		swap(create, status, `"statusCode":201.0`),
		swap(create, status, `"statusCode":2.01e2`),
		swap(create, status, `"statusCode":2e2`),
		swap(create, status, `"statusCode":-201`),
		swap(create, status, `"statusCode":0`),
		swap(create, status, `"statusCode":1e400`),
		swap(create, status, `"statusCode":299`),
		swap(create, status, `"statusCode":600`),
		swap(create, status, `"statusCode":true`),
		swap(create, status, `"statusCode":{}`),
		swap(create, status, `"statusCode":null`),
		swap(create, `"responseElements":{`, `"responseElements":["x"],"x":{`),
		swap(create, `"requestParameters":{`, `"requestParameters":"x","x":{`),
		swap(create, `"resourceType":"Patient"`, `"resourceType":null`),
		swap(create, `"resourceType":"Patient"`, `"resourceType":false`),
		swap(create, `"eventID":"`, `"eventID":1,"x":"`),
		swap(create, `"account":"123456789012"`, `"account":123456789012`),
		// Times: the form CloudTrail writes, and what time.Parse accepts or refuses beside it.
		swap(create, evTime, `"eventTime":"2026-11-20T09:16:00z"`),
		swap(create, evTime, `"eventTime":"2026-11-20t09:16:00Z"`),
		swap(create, evTime, `"eventTime":"2026-11-20T9:16:00Z"`),
		swap(create, evTime, `"eventTime":"2026-11-20T09:16:00.5Z"`),
		swap(create, evTime, `"eventTime":"2026-11-20T09:16:00,5Z"`),
		swap(create, evTime, `"eventTime":"2026-11-20T09:16:00.999999999Z"`),
		swap(create, evTime, `"eventTime":"2026-11-20T09:16:00+05:30"`),
		swap(create, evTime, `"eventTime":"2026-11-20T09:16:00-00:00"`),
		swap(create, evTime, `"eventTime":"2026-02-29T09:16:00Z"`),
		swap(create, evTime, `"eventTime":"2024-02-29T09:16:00Z"`),
		swap(create, evTime, `"eventTime":"2100-02-29T09:16:00Z"`),
		swap(create, evTime, `"eventTime":"2000-02-29T09:16:00Z"`),
		swap(create, evTime, `"eventTime":"2026-04-31T09:16:00Z"`),
		swap(create, evTime, `"eventTime":"2026-12-31T23:59:59Z"`),
		swap(create, evTime, `"eventTime":"2026-13-01T09:16:00Z"`),
		swap(create, evTime, `"eventTime":"2026-00-01T09:16:00Z"`),
		swap(create, evTime, `"eventTime":"2026-11-00T09:16:00Z"`),
		swap(create, evTime, `"eventTime":"2026-11-20T24:00:00Z"`),
		swap(create, evTime, `"eventTime":"2026-11-20T09:60:00Z"`),
		swap(create, evTime, `"eventTime":"2026-11-20T09:16:60Z"`),
		swap(create, evTime, `"eventTime":"1999-12-31T23:59:59Z"`),
		swap(create, evTime, `"eventTime":"2000-01-01T00:00:00Z"`),
		swap(create, evTime, `"eventTime":"2000-01-01T00:30:00+01:00"`),
		swap(create, evTime, `"eventTime":"9998-12-31T23:59:59Z"`),
		swap(create, evTime, `"eventTime":"9999-01-01T00:00:00Z"`),
		swap(create, evTime, `"eventTime":"2026-11-20 09:16:00Z"`),
		swap(create, evTime, `"eventTime":"2026-11-20T09:16:00"`),
		swap(create, evTime, `"eventTime":"2026-11-20T09:16:0aZ"`),
		swap(create, evTime, `"eventTime":"２026-11-20T09:16:00Z"`),
		swap(imp, `"time":"`, `"time":"2026-11-20T09:14:42.123Z","x":"`),
		// Whitespace everywhere it may be, and nesting at encoding/json's limit and beyond it
		// (the record is depth 1, so 9999 more is the deepest allowed).
		spaced(t, create),
		swap(create, src, src+`,"deep":`+strings.Repeat("[", 9999)+strings.Repeat("]", 9999)),
		swap(create, src, src+`,"deep":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)),
		swap(create, src, src+`,"deep":`+strings.Repeat(`{"a":`, 9999)+"1"+strings.Repeat("}", 9999)),
		swap(create, src, src+`,"deep":`+strings.Repeat(`{"a":`, 10000)+"1"+strings.Repeat("}", 10000)),
		swap(create, det, det+`"deep":`+strings.Repeat("[", 9998)+strings.Repeat("]", 9998)+`,`),
		swap(create, det, det+`"deep":`+strings.Repeat("[", 9999)+strings.Repeat("]", 9999)+`,`),
		// Syntax errors, each at a known place.
		join(create, " x"),
		join(create, "}"),
		join(create, "{}"),
		swap(create, src, src+`,"n":01`),
		swap(create, src, src+`,"n":1.`),
		swap(create, src, src+`,"n":1.e5`),
		swap(create, src, src+`,"n":1e`),
		swap(create, src, src+`,"n":1e+`),
		swap(create, src, src+`,"n":-`),
		swap(create, src, src+`,"n":+1`),
		swap(create, src, src+`,"n":.5`),
		swap(create, src, src+`,"n":tru`),
		swap(create, src, src+`,"n":nul`),
		swap(create, src, src+`,"n":nullx`),
		swap(create, src, src+`,"n":"\x"`),
		swap(create, src, src+`,"n":"\u12"`),
		swap(create, src, src+`,"n":"\u12g4"`),
		swap(create, src, src+"\t,\"n\":\"a\tb\""),
		swap(create, src, src+`,"n" 1`),
		swap(create, src, src+`,,"n":1`),
		swap(create, src, src+`,"n":[1,]`),
		swap(create, src, src+`,"n":[,1]`),
		swap(create, src, src+`,"n":{"a"}`),
		swap(create, src, src+`,"n":{1:2}`),
		swap(create, src, src+`,"n":{"a":1,}`),
		swap(create, src, src+`,n:1`),
		swap(create, src, src+",\"n\":\x00"),
		swap(create, status, `"statusCode":201,}`),
		swap(create, status, `"statusCode":2O1`),
		create[:len(create)-1],
		[]byte(`{"source":"aws.healthlake","detail":{"eventSource":"healthlake.amazonaws.com"`),
		[]byte(`{"source":"aws.healthlake"`),
		[]byte(`{"source"`),
		[]byte(`{"source":"aws.healthlake\`),
		[]byte(`{"a":"\u`),
		[]byte(`{`),
		[]byte(`{}`),
		[]byte(`{} `),
		[]byte(` {"source":"aws.healthlake"} `),
		[]byte(`{"source":"aws.healthlake","detail-type":null}`),
		[]byte(`{"source":"aws.healthlake","detail":{}}`),
		[]byte(`{"source":"aws.healthlake","detail":{"eventSource":"healthlake.amazonaws.com","eventName":"CreateResource","responseElements":{}}}`),
	}
	return out
}

// compact returns b without the blanks between tokens, as records come off the stream.
func compact(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// spaced returns b with every kind of JSON blank around every token (b's strings hold no
// quote followed by a colon or a comma, so only places between tokens are touched).
func spaced(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, " ", "\t"); err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("\n", " \r\n", `": `, "\"\t:\n ", `",`, "\"\r ,").Replace(out.String())
	return []byte(" \t" + s + "\n ")
}

// TestKeyListsFoldApart: match may stop at the first name a key folds to only because no two
// names of one list fold alike.
func TestKeyListsFoldApart(t *testing.T) {
	for _, names := range [][]string{envelopeKeys, detailKeys, paramsKeys, responseKeys} {
		for i, a := range names {
			for _, b := range names[i+1:] {
				if strings.EqualFold(a, b) {
					t.Errorf("%q and %q fold alike", a, b)
				}
			}
		}
	}
}

// FuzzString: for any JSON string, str accepts exactly what encoding/json accepts, and unquote
// (which keys are matched by and values read with) gives the bytes encoding/json gives; the
// exception is a string without escapes, which both decoders keep as it is in the data.
func FuzzString(f *testing.F) {
	for _, s := range []string{
		``, `a`, `\"`, `\\`, `\/`, `\b\f\n\r\t`, `\u0041`, `\u00e9`, `\u20AC`, `\ud83d\ude00`, `\uD83D\uDE00x`,
		`\ud83d`, `\ude00`, `\ud83dx`, `\ud83d\n`, `\ud83d\u0041`, `\ude00\ud83d\ude00`, `\ud83d\ud83d\ude00`,
		"\xff\\n", "\xe2\x82\\n", "é\\u0041", "\\u0073ource", `\x`, `\u12`, `\u12g4`, "a\tb", `\`, `"`,
		"\xef\xbf\xbd\\t", `\u0000`, `\uFFFD`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		quoted := append(append([]byte{'"'}, s...), '"')
		d := decoder{data: quoted}
		got, escaped, ok := d.str()
		ok = ok && d.pos == len(quoted)
		if ok != json.Valid(quoted) {
			t.Fatalf("%q: str says %v, encoding/json %v", quoted, ok, !ok)
		}
		if !ok || !escaped {
			return
		}
		var want string
		if err := json.Unmarshal(got, &want); err != nil {
			t.Fatal(err)
		}
		if u := unquote(got, true); string(u) != want {
			t.Fatalf("%q: unquote %q, encoding/json %q", quoted, u, want)
		}
		var buf [4]byte // as match does, with a buffer too small for most
		if u := unescape(buf[:0], got[1:len(got)-1]); string(u) != want {
			t.Fatalf("%q: unescape %q, encoding/json %q", quoted, u, want)
		}
	})
}
