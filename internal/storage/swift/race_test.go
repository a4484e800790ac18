//go:build race

package swift

const raceEnabled = true
