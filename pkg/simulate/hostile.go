package simulate

import (
	"embed"
	"io/fs"
	"path"
)

// The hostile records are copies of the CloudTrail package's reject, garbage and truncated
// fixtures, embedded so that the producer binary carries them.
//
//go:embed hostile/*.json hostile/*.bin
var hostileFS embed.FS

type hostileRecord struct {
	name string
	data []byte
}

// hostileRecords are the embedded records, in file name order.
var hostileRecords = func() []hostileRecord {
	var rs []hostileRecord
	entries, err := fs.ReadDir(hostileFS, "hostile")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	for _, e := range entries {
		data, err := hostileFS.ReadFile(path.Join("hostile", e.Name()))
		if err != nil {
			panic(err)
		}
		rs = append(rs, hostileRecord{e.Name(), data})
	}
	return rs
}()
