package fhir

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigningService is HealthLake's SigV4 service name.
const SigningService = "healthlake"

// emptyPayloadHash is the hex SHA-256 of an empty body, the payload hash of every GET.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// SigV4Transport returns a RoundTripper that signs each request with AWS Signature Version 4
// for HealthLake in region and passes the signed copy to next (http.DefaultTransport if nil).
// Credentials are retrieved for every request, so the provider must cache (aws.Config's
// Credentials does: it is an aws.CredentialsCache). now is the signing clock (time.Now if
// nil). The caller's request is never modified.
func SigV4Transport(next http.RoundTripper, creds aws.CredentialsProvider, region string, now func() time.Time) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if now == nil {
		now = time.Now
	}
	return &sigV4Transport{next: next, creds: creds, region: region, now: now, signer: v4.NewSigner()}
}

type sigV4Transport struct {
	next   http.RoundTripper
	creds  aws.CredentialsProvider
	region string
	now    func() time.Time
	signer *v4.Signer
}

func (t *sigV4Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must close the request body, even on error.
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	if t.creds == nil || t.region == "" {
		closeBody()
		return nil, errors.New("sigv4: no credentials provider or region")
	}
	hash, err := payloadHash(req)
	if err != nil {
		closeBody()
		return nil, err
	}
	ctx := req.Context()
	creds, err := t.creds.Retrieve(ctx)
	if err != nil {
		closeBody()
		return nil, fmt.Errorf("sigv4: retrieve credentials: %w", err)
	}
	signed := req.Clone(ctx) // deep-copies URL and headers, which signing rewrites
	if err := t.signer.SignHTTP(ctx, creds, signed, hash, SigningService, t.region, t.now()); err != nil {
		closeBody()
		return nil, fmt.Errorf("sigv4: sign: %w", err)
	}
	return t.next.RoundTrip(signed)
}

// payloadHash hashes the body without consuming it: through GetBody, which
// http.NewRequest sets for in-memory bodies.
func payloadHash(req *http.Request) (string, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return emptyPayloadHash, nil
	}
	if req.GetBody == nil {
		return "", errors.New("sigv4: request body cannot be re-read for signing (no GetBody)")
	}
	body, err := req.GetBody()
	if err != nil {
		return "", fmt.Errorf("sigv4: read body: %w", err)
	}
	defer body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, body); err != nil {
		return "", fmt.Errorf("sigv4: read body: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
