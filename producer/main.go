// Command producer drives traffic for local runs, demos, load tests and replays.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "producer: not built yet")
	os.Exit(2)
}
