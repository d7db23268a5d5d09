//go:build race

package assets

// raceDetector shrinks the linear-scan comparisons, which the race detector
// slows tenfold and which hold no concurrency to check.
const raceDetector = true
