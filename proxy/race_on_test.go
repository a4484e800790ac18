//go:build race

package proxy

// raceEnabled shrinks the large transfers: the race detector makes the
// client side of the test many times slower.
const raceEnabled = true
