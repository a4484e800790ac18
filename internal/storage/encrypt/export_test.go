package encrypt

// ForceDecryptWorkers makes long reads decrypt on n workers (below 2: one
// sequential reader) whatever the machine, until the returned func runs.
func ForceDecryptWorkers(n int) (restore func()) {
	old := decryptWorkers
	decryptWorkers = func() int { return n }
	return func() { decryptWorkers = old }
}
