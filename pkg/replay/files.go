package replay

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Files expands paths into the sorted list of log files to read. A path may be a file (taken
// whatever its name), a directory (searched recursively for *.json, *.jsonl and *.gz, as
// CloudTrail's S3 layout nests them by account, region and date) or a glob pattern. Sorting
// by path replays an S3 prefix roughly in time order, since CloudTrail's keys contain the
// date and time. A path that matches nothing is an error.
func Files(paths []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		matches := []string{p}
		if strings.ContainsAny(p, "*?[") {
			var err error
			if matches, err = filepath.Glob(p); err != nil {
				return nil, fmt.Errorf("replay: pattern %q: %w", p, err)
			}
			if len(matches) == 0 {
				return nil, fmt.Errorf("replay: %q matches no file", p)
			}
		}
		for _, m := range matches {
			fi, err := os.Stat(m)
			if err != nil {
				return nil, fmt.Errorf("replay: %w", err)
			}
			if !fi.IsDir() {
				add(m)
				continue
			}
			n := len(out)
			err = filepath.WalkDir(m, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.Type().IsRegular() && isLogName(d.Name()) {
					add(path)
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("replay: %w", err)
			}
			if len(out) == n {
				return nil, fmt.Errorf("replay: directory %s holds no .json, .jsonl or .gz file", m)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

func isLogName(name string) bool {
	return strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".gz")
}
