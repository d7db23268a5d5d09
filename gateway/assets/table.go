package assets

import "sync/atomic"

// Table holds the current Matcher. Readers never block: a rebuild is made
// aside and swapped in atomically, and lookups in flight finish on the
// Matcher they loaded.
type Table struct {
	cur atomic.Pointer[Matcher]
}

// NewTable returns a Table holding m; a nil m owns nothing until Store.
func NewTable(m *Matcher) *Table {
	t := &Table{}
	t.cur.Store(m)
	return t
}

// Load returns the current Matcher. Use the one value for a whole
// operation (one event, one CSV file) so it sees one registry version.
func (t *Table) Load() *Matcher { return t.cur.Load() }

// Store makes m the current Matcher.
func (t *Table) Store(m *Matcher) { t.cur.Store(m) }
