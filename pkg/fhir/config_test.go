package fhir

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	const good = "https://healthlake.us-east-1.amazonaws.com/datastore/{datastoreId}/r4/"
	for name, tc := range map[string]struct {
		cfg     Config
		wantErr string
	}{
		"healthlake":           {Config{Endpoint: good}, ""},
		"no slash":             {Config{Endpoint: strings.TrimSuffix(good, "/")}, ""},
		"local":                {Config{Endpoint: "http://127.0.0.1:18090/datastore/{datastoreId}/r4/"}, ""},
		"empty":                {Config{}, "exactly once"},
		"no placeholder":       {Config{Endpoint: "https://h/datastore/abc/r4/"}, "exactly once"},
		"two placeholders":     {Config{Endpoint: "https://h/{datastoreId}/{datastoreId}/"}, "exactly once"},
		"placeholder in host":  {Config{Endpoint: "https://{datastoreId}.example.com/r4/"}, "host"},
		"placeholder in query": {Config{Endpoint: "https://h/r4/?{datastoreId}"}, "query"},
		"ftp":                  {Config{Endpoint: "ftp://h/datastore/{datastoreId}/r4/"}, "http or https"},
		"relative":             {Config{Endpoint: "/datastore/{datastoreId}/r4/"}, "http or https"},
		"query":                {Config{Endpoint: good + "?x=1"}, "query"},
		"fragment":             {Config{Endpoint: good + "#f"}, "fragment"},
		"user":                 {Config{Endpoint: "https://u:p@h/datastore/{datastoreId}/r4/"}, "user info"},
		"dot segment":          {Config{Endpoint: "https://h/datastore/../{datastoreId}/r4/"}, "clean"},
		"double slash":         {Config{Endpoint: "https://h//datastore/{datastoreId}/r4/"}, "clean"},
		"escape":               {Config{Endpoint: "https://h/data%20store/{datastoreId}/r4/"}, "clean"},
		"page size":            {Config{Endpoint: good, PageSize: 101}, "page size"},
		"negative attempts":    {Config{Endpoint: good, MaxAttempts: -1}, "attempts"},
		"backoff order":        {Config{Endpoint: good, BaseBackoff: time.Second, MaxBackoff: time.Millisecond}, "backoff"},
		"negative backoff":     {Config{Endpoint: good, BaseBackoff: -1}, "negative"},
		"negative pages":       {Config{Endpoint: good, MaxPages: -1}, "pages"},
		"negative bytes":       {Config{Endpoint: good, MaxPageBytes: -1}, "bytes"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: err %v, want one mentioning %q", name, err, tc.wantErr)
		}
	}
}

func TestNewAppliesDefaults(t *testing.T) {
	c, err := New(Config{Endpoint: "https://HealthLake.us-east-1.amazonaws.com:443/datastore/{datastoreId}/r4"})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.PageSize != 100 || c.cfg.MaxAttempts != 8 || c.cfg.MaxPages != DefaultMaxPages ||
		c.cfg.MaxPageBytes != 32<<20 || c.cfg.Clock == nil || c.cfg.Rand == nil || c.http.Timeout != DefaultHTTPTimeout {
		t.Errorf("defaults not applied: %+v", c.cfg)
	}
	u := c.url(testDS, "Observation", nil)
	if got, want := u.String(), "https://healthlake.us-east-1.amazonaws.com/datastore/"+testDS+"/r4/Observation"; got != want {
		t.Errorf("url = %s, want %s", got, want)
	}
	if _, err := New(Config{Endpoint: "nope"}); err == nil {
		t.Error("New accepted an invalid config")
	}
}
