package cloudtrail

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// BenchmarkDecide measures the hot path: one op is one record.
func BenchmarkDecide(b *testing.B) {
	v, err := NewValidator([]string{"095d2262da454bb7347488c930e009eb", "a1b2c3d4e5f60718293a4b5c6d7e8f90"})
	if err != nil {
		b.Fatal(err)
	}
	create, err := os.ReadFile("testdata/create-patient.json")
	if err != nil {
		b.Fatal(err)
	}
	burst, err := os.ReadFile("testdata/burst-50.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(burst), []byte("\n"))

	b.Run("create-patient", func(b *testing.B) {
		b.SetBytes(int64(len(create)))
		b.ReportAllocs()
		for b.Loop() {
			if d := v.Decide(create); d.Outcome != Act {
				b.Fatal(d)
			}
		}
	})
	// A read (skipped: most of the stream in a read-heavy account) and an import event (the
	// other path to Act).
	for _, tc := range []struct {
		name string
		want Outcome
	}{{"ignore-read.json", Skip}, {"import-completed.json", Act}} {
		data, err := os.ReadFile("testdata/" + tc.name)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(tc.name, ".json"), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if d := v.Decide(data); d.Outcome != tc.want {
					b.Fatal(d)
				}
			}
		})
	}
	b.Run("burst-50", func(b *testing.B) {
		b.SetBytes(int64(len(burst) / len(lines)))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if d := v.Decide(lines[i]); d.Outcome != Act {
				b.Fatal(d)
			}
			if i++; i == len(lines) {
				i = 0
			}
		}
	})
}
