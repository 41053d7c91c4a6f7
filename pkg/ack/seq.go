package ack

import (
	"errors"
	"fmt"
)

// maxSeqDigits is the longest sequence number Kinesis documents (pattern 0|([1-9]\d{0,128})).
const maxSeqDigits = 129

// ErrMalformed is returned for a sequence number that is not a Kinesis sequence number.
var ErrMalformed = errors.New("malformed sequence number")

// ErrOutOfOrder is returned when a record is added whose sequence number is not greater than
// the previous one's: the tracker relies on shard order to know what "before" means.
var ErrOutOfOrder = errors.New("sequence number out of order")

// Compare compares two Kinesis sequence numbers numerically and returns -1, 0 or +1. Both must
// be valid (see Valid): decimals without leading zeros order by length, then digit by digit.
func Compare(a, b string) int {
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Valid reports whether s is a Kinesis sequence number: a non-negative decimal of at most 129
// digits without leading zeros. Sequence numbers exceed 64 bits, so they stay strings.
func Valid(s string) bool {
	if len(s) == 0 || len(s) > maxSeqDigits || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validate(s string) error {
	if !Valid(s) {
		q := s
		if len(q) > 40 {
			q = q[:40] + "…"
		}
		return fmt.Errorf("%w: %q", ErrMalformed, q)
	}
	return nil
}
