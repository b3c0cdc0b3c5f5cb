//go:build race

package main

// raceEnabled: the race detector is on, and what it adds to every allocation is not the desk's.
const raceEnabled = true
