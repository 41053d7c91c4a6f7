package ack_test

import (
	"fmt"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/ack"
)

func Example() {
	tr := ack.New()
	a, _ := tr.Add("101")
	b, _ := tr.Add("102")
	c, _ := tr.Add("103")

	tr.Done(c) // the last record finishes first: nothing may be checkpointed yet
	_, ok := tr.Checkpoint()
	fmt.Println(ok)

	tr.Done(a)
	seq, _ := tr.Checkpoint()
	fmt.Println(seq, tr.InFlight())

	tr.Done(b)
	seq, _ = tr.Checkpoint()
	fmt.Println(seq, tr.Pending())
	// Output:
	// false
	// 101 1
	// 103 false
}
