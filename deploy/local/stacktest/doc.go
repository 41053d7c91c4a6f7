// Package stacktest holds the integration tests of the local stack in deploy/local: each test
// talks to a running server (started by `make up`) through the client a real program uses.
package stacktest
