package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/verify"
)

// errMissing: verify found writes that were never announced. main exits 1 without a message
// (the report says what is missing).
var errMissing = errors.New("writes are missing")

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check a simulate manifest against the events the consumer emitted",
		Description: "A write counts as announced when an event of --source for the same resource has a\n" +
			"lastUpdated at or after the write's (the consumer sees only a resource's latest version), or\n" +
			"when the resource's later delete was announced. Deletes count only with --expect-deletes.\n" +
			"Latency runs from the write's lastUpdated to the recorder's receipt of the first covering\n" +
			"event; percentiles are nearest-rank. Bundle entries, imported resources, JSON Patch writes\n" +
			"and writes whose hint simulate dropped (--drop-hints, --drop-gap) count like any write; the\n" +
			"report breaks writes and missing ones down by how they were written (rest, batch,\n" +
			"transaction, import) and by whether their hint was put. Prints a table (or JSON with\n" +
			"--json); exits 1 when anything is missing, 0 otherwise.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "manifest", Required: true, TakesFile: true, Usage: "(required) the manifest `FILE` simulate wrote"},
			&cli.StringFlag{Name: "events", TakesFile: true,
				Usage: "the recorder's events `FILE` (JSON lines); default: the file the recorder at --recorder reports"},
			&cli.StringFlag{Name: "recorder", Sources: cli.EnvVars("AWS_ENDPOINT_URL_EVENTBRIDGE"), Value: localRecorder,
				Usage: "URL of the local EventBridge recorder, asked for its events file when --events is not given"},
			&cli.StringFlag{Name: "source", Sources: cli.EnvVars("CDC_SOURCE"), Value: verify.DefaultSource,
				Usage: "Source of the consumer's events"},
			&cli.BoolFlag{Name: "expect-deletes", Usage: "a delete without a delete event counts as missing"},
			&cli.BoolFlag{Name: "all-datastores", Usage: "count events of every datastore, not only those the manifest wrote to"},
			&cli.DurationFlag{Name: "wait", Usage: "read the events again every 2s until nothing is missing or this much time has passed"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&cli.StringFlag{Name: "consumer-metrics", Usage: "`URL` of the consumer's /metrics: adds its FHIR requests, searches and resources read to the table"},
		},
		Action: runVerify,
	}
}

func runVerify(ctx context.Context, cmd *cli.Command) error {
	events := cmd.String("events")
	if events == "" {
		var err error
		if events, err = recorderFile(ctx, cmd.String("recorder")); err != nil {
			return err
		}
	}
	opts := verify.Options{
		Source:                 cmd.String("source"),
		ManifestDatastoresOnly: !cmd.Bool("all-datastores"),
		ExpectDeletes:          cmd.Bool("expect-deletes"),
	}
	deadline := time.Now().Add(cmd.Duration("wait"))
	var rep verify.Report
	for {
		var err error
		if rep, err = verifyFiles(cmd.String("manifest"), events, opts); err != nil {
			return err
		}
		if rep.OK() || !time.Now().Before(deadline) {
			break
		}
		fmt.Fprintf(cmd.Root().ErrWriter, "verify: %d of %d writes missing; reading the events again in 2s\n", rep.Missing, rep.Writes)
		if err := clock.Sleep(ctx, clock.Real{}, 2*time.Second); err != nil {
			return err
		}
	}
	w := cmd.Root().Writer
	if cmd.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprint(w, rep.Table())
		if u := cmd.String("consumer-metrics"); u != "" {
			if err := printConsumerMetrics(ctx, w, u); err != nil {
				fmt.Fprintf(cmd.Root().ErrWriter, "verify: consumer metrics: %v\n", err)
			}
		}
	}
	if !rep.OK() {
		return errMissing
	}
	return nil
}

func verifyFiles(manifest, events string, opts verify.Options) (verify.Report, error) {
	m, err := os.Open(manifest)
	if err != nil {
		return verify.Report{}, err
	}
	defer m.Close()
	e, err := os.Open(events)
	if err != nil {
		return verify.Report{}, err
	}
	defer e.Close()
	return verify.Verify(m, e, opts)
}

// recorderFile asks the local EventBridge recorder where it writes the events.
func recorderFile(ctx context.Context, recorder string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := strings.TrimSuffix(recorder, "/") + "/_recorder/stats"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("ask the recorder for its events file (or pass --events): %w", err)
	}
	defer resp.Body.Close()
	var stats struct {
		Out string `json:"out"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s (is --recorder the local EventBridge recorder? else pass --events)", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&stats); err != nil || stats.Out == "" {
		return "", fmt.Errorf("GET %s: no events file in the answer (pass --events)", u)
	}
	return stats.Out, nil
}

// printConsumerMetrics adds what the consumer did to get there, from its Prometheus page.
func printConsumerMetrics(ctx context.Context, w io.Writer, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sums := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		sums[name] += v
	}
	if err := sc.Err(); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "FHIR requests\t%.0f\n", sums["hlcdc_fhir_requests_total"])
	fmt.Fprintf(tw, "searches (verification re-reads)\t%.0f (%.0f)\n", sums["hlcdc_searches_total"], sums["hlcdc_ranges_reread_total"])
	fmt.Fprintf(tw, "ranges verified / parked\t%.0f / %.0f\n", sums["hlcdc_ranges_verified_total"], sums["hlcdc_ranges_parked_total"])
	fmt.Fprintf(tw, "resources read\t%.0f\n", sums["hlcdc_resources_read_total"])
	fmt.Fprintf(tw, "Kinesis records read\t%.0f\n", sums["hlcdc_records_total"])
	return tw.Flush()
}
