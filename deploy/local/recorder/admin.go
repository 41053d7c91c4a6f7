package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The admin API lives under /_recorder/, a path the AWS SDK never calls.

// configUpdate is the body of POST /_recorder/config: fields left out keep their value, so a
// test can set failNextIndexes without clearing a fail rate someone else configured.
type configUpdate struct {
	FailRate        *float64 `json:"failRate"`
	FailCode        *string  `json:"failCode"`
	ThrottleRate    *float64 `json:"throttleRate"`
	FailNextIndexes *[]int   `json:"failNextIndexes"`
	DelayMs         *int64   `json:"delayMs"`
	// FailCallsWith sets (or, with an empty code, clears) the failure of whole calls.
	FailCallsWith *CallFailure `json:"failCallsWith"`
	// Source, when set, scopes the update to calls whose first entry has this Source, so
	// concurrent tests sharing one recorder (each with its own Source) do not fail each
	// other's entries. Such an override starts from no failures.
	Source *string `json:"source"`
}

// apply returns f with the update applied at now (the start of a FailCallsWith window).
func (u configUpdate) apply(f Failures, now time.Time) Failures {
	if u.FailRate != nil {
		f.FailRate = *u.FailRate
	}
	if u.FailCode != nil {
		f.FailCode = *u.FailCode
	}
	if u.ThrottleRate != nil {
		f.ThrottleRate = *u.ThrottleRate
	}
	if u.FailNextIndexes != nil {
		f.FailNextIndexes = *u.FailNextIndexes
	}
	if u.DelayMs != nil {
		f.DelayMs = *u.DelayMs
	}
	if c := u.FailCallsWith; c != nil {
		f.FailCallsWith = nil
		if c.Code != "" {
			cf := *c
			if cf.Status == 0 {
				cf.Status = http.StatusBadRequest
			}
			cf.Until = nil
			if cf.ForMs > 0 {
				until := now.Add(time.Duration(cf.ForMs) * time.Millisecond)
				cf.Until = &until
			}
			f.FailCallsWith = &cf
		}
	}
	return f.withDefaults()
}

// statsResponse is the body of GET /_recorder/stats.
type statsResponse struct {
	Stats
	// Out is the absolute path of the output file, so tests can read what was recorded.
	Out    string   `json:"out"`
	Config Failures `json:"config"`
}

func (r *Recorder) serveGetConfig(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	f := r.failures.withDefaults()
	r.mu.Unlock()
	writeJSON(w, "application/json", f)
}

func (r *Recorder) servePostConfig(w http.ResponseWriter, req *http.Request) {
	var u configUpdate
	dec := json.NewDecoder(io.LimitReader(req.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		http.Error(w, fmt.Sprintf("config: %v", err), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	base := r.failures
	if u.Source != nil {
		base = r.bySource[*u.Source]
	}
	f := u.apply(base, r.now())
	if err := f.Validate(); err != nil {
		r.mu.Unlock()
		http.Error(w, fmt.Sprintf("config: %v", err), http.StatusBadRequest)
		return
	}
	if u.Source != nil {
		r.bySource[*u.Source] = f
	} else {
		r.failures = f
	}
	r.mu.Unlock()
	r.log.Info("failure injection configured", "failRate", f.FailRate, "failCode", f.FailCode,
		"throttleRate", f.ThrottleRate, "failNextIndexes", f.FailNextIndexes, "delayMs", f.DelayMs, "failCallsWith", f.FailCallsWith)
	writeJSON(w, "application/json", f)
}

func (r *Recorder) serveStats(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	resp := statsResponse{Stats: r.stats, Out: r.out, Config: r.failures.withDefaults()}
	r.mu.Unlock()
	writeJSON(w, "application/json", resp)
}

// serveReset empties the output file, zeroes the stats and returns failure injection and the
// random source to how they were at start.
func (r *Recorder) serveReset(w http.ResponseWriter, _ *http.Request) {
	if err := r.truncate(); err != nil {
		r.log.Error("truncate output file failed", "file", r.out, "error", err)
		http.Error(w, "reset: could not truncate the output file", http.StatusInternalServerError)
		return
	}
	r.mu.Lock()
	r.stats = Stats{}
	r.failures = r.initial.withDefaults()
	r.bySource = make(map[string]Failures)
	r.rng = newRand(r.seed)
	resp := statsResponse{Stats: r.stats, Out: r.out, Config: r.failures.withDefaults()}
	r.mu.Unlock()
	r.log.Info("recorder reset")
	writeJSON(w, "application/json", resp)
}

func (r *Recorder) truncate() error {
	r.fileMu.Lock()
	defer r.fileMu.Unlock()
	if r.file == nil {
		return fmt.Errorf("output file is closed")
	}
	// The file is opened O_APPEND, so the next write lands at the new end.
	return r.file.Truncate(0)
}
