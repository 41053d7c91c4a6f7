package fhir

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// captureTransport records the request it is given and answers 200 with an empty body.
func captureTransport(got **http.Request) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		*got = r
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
	})
}

type countingCreds struct {
	n     atomic.Int32
	creds aws.Credentials
	err   error
}

func (c *countingCreds) Retrieve(context.Context) (aws.Credentials, error) {
	c.n.Add(1)
	return c.creds, c.err
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// TestSigV4Signature recomputes the signature from the SigV4 specification, independently of
// the SDK signer, for a fixed clock and static credentials.
func TestSigV4Signature(t *testing.T) {
	const (
		akid   = "AKIDEXAMPLE"
		secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
		region = "us-east-1"
		host   = "healthlake.us-east-1.amazonaws.com"
	)
	signTime := time.Date(2024, 5, 1, 12, 0, 5, 0, time.UTC)
	var got *http.Request
	creds := &countingCreds{creds: aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}}
	rt := SigV4Transport(captureTransport(&got), creds, region, func() time.Time { return signTime.In(time.FixedZone("X", -5*3600)) })

	// Query parameters out of canonical order, a repeated key, an escaped colon.
	rawQuery := "_lastUpdated=lt2024-05-01T12%3A00%3A01.000Z&_count=100&_lastUpdated=ge2024-05-01T12%3A00%3A00.000Z"
	req, err := http.NewRequest(http.MethodGet, "https://"+host+"/datastore/"+testDS+"/r4/Observation?"+rawQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	canonical := strings.Join([]string{
		"GET",
		"/datastore/" + testDS + "/r4/Observation",
		"_count=100&_lastUpdated=ge2024-05-01T12%3A00%3A00.000Z&_lastUpdated=lt2024-05-01T12%3A00%3A01.000Z",
		"accept:application/fhir+json",
		"host:" + host,
		"x-amz-date:20240501T120005Z",
		"",
		"accept;host;x-amz-date",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	stringToSign := "AWS4-HMAC-SHA256\n20240501T120005Z\n20240501/us-east-1/healthlake/aws4_request\n" + hex.EncodeToString(sum[:])
	key := hmacSHA256([]byte("AWS4"+secret), "20240501")
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, "healthlake")
	key = hmacSHA256(key, "aws4_request")
	signature := hex.EncodeToString(hmacSHA256(key, stringToSign))

	want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/healthlake/aws4_request, SignedHeaders=accept;host;x-amz-date, Signature=" + signature
	if a := got.Header.Get("Authorization"); a != want {
		t.Errorf("Authorization\n got %s\nwant %s", a, want)
	}
	if d := got.Header.Get("X-Amz-Date"); d != "20240501T120005Z" {
		t.Errorf("X-Amz-Date = %q", d)
	}
	// The caller's request is untouched.
	if req.Header.Get("Authorization") != "" || req.Header.Get("X-Amz-Date") != "" || req.URL.RawQuery != rawQuery {
		t.Errorf("original request was modified: %v %q", req.Header, req.URL.RawQuery)
	}
	if got == req {
		t.Error("the signed request is the caller's request")
	}
}

func TestSigV4SessionTokenAndCredentialsPerRequest(t *testing.T) {
	var got *http.Request
	creds := &countingCreds{creds: aws.Credentials{AccessKeyID: "A", SecretAccessKey: "S", SessionToken: "TOKEN"}}
	rt := SigV4Transport(captureTransport(&got), creds, "eu-west-2", nil)
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest(http.MethodGet, "https://healthlake.eu-west-2.amazonaws.com/datastore/"+testDS+"/r4/Patient", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if creds.n.Load() != 2 {
		t.Errorf("credentials retrieved %d times, want once per request", creds.n.Load())
	}
	a := got.Header.Get("Authorization")
	if !strings.Contains(a, "/eu-west-2/healthlake/aws4_request") || !strings.Contains(a, "x-amz-security-token") {
		t.Errorf("Authorization = %q", a)
	}
	if got.Header.Get("X-Amz-Security-Token") != "TOKEN" {
		t.Error("session token header missing")
	}
}

func TestSigV4Errors(t *testing.T) {
	called := false
	next := roundTripFunc(func(r *http.Request) (*http.Response, error) { called = true; return nil, errors.New("unreachable") })
	boom := errors.New("no credentials")
	rt := SigV4Transport(next, &countingCreds{err: boom}, "us-east-1", nil)
	req, _ := http.NewRequest(http.MethodGet, "https://h/x", nil)
	if _, err := rt.RoundTrip(req); !errors.Is(err, boom) || called {
		t.Errorf("err %v, next called %v", err, called)
	}
	// A body that cannot be re-read cannot be hashed.
	rt = SigV4Transport(next, &countingCreds{}, "us-east-1", nil)
	req, _ = http.NewRequest(http.MethodPost, "https://h/x", io.NopCloser(strings.NewReader("{}")))
	req.GetBody = nil
	if _, err := rt.RoundTrip(req); err == nil || called {
		t.Errorf("err %v, next called %v", err, called)
	}
}

func TestSigV4BodyHash(t *testing.T) {
	var got *http.Request
	rt := SigV4Transport(captureTransport(&got), &countingCreds{creds: aws.Credentials{AccessKeyID: "A", SecretAccessKey: "S"}}, "us-east-1", nil)
	req, _ := http.NewRequest(http.MethodPost, "https://h/x", strings.NewReader(`{"a":1}`))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The body was hashed through GetBody and is still whole for the real send.
	b, _ := io.ReadAll(got.Body)
	if string(b) != `{"a":1}` || !strings.Contains(got.Header.Get("Authorization"), "content-length") {
		t.Errorf("body %q, Authorization %q", b, got.Header.Get("Authorization"))
	}
}

func TestClientWithSigV4(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		a := r.Header.Get("Authorization")
		if !strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential=A/") || !strings.Contains(a, "/us-east-1/healthlake/aws4_request") || r.Header.Get("X-Amz-Date") == "" {
			w.WriteHeader(403)
			return
		}
		writeJSON(w, 200, searchset("", match(obs("s", "1", t0))))
	})
	hc := *f.Client()
	hc.Transport = SigV4Transport(hc.Transport, &countingCreds{creds: aws.Credentials{AccessKeyID: "A", SecretAccessKey: "S"}}, "us-east-1", nil)
	c, _ := newTestClient(t, f, func(c *Config) { c.HTTPClient = &hc })
	pages, err := collect(c, t.Context())
	if err != nil || len(ids(pages)) != 1 {
		t.Fatalf("pages %v, err %v", pages, err)
	}
}
