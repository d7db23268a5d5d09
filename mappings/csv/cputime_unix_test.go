//go:build unix

package csv_test

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time, GC workers included: on a
// shared machine it measures the work, where wall time measures the queue.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
