package csv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
)

// Sub-folders of the drop folder.
const (
	ProcessedDir = "processed"
	FailedDir    = "failed"
)

// pending reports whether a name is still being written by its producer.
func pending(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".part") ||
		strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".partial")
}

func (s *Source) pollFolder(ctx context.Context) (Stats, error) {
	var st Stats
	dir := s.opts.Path
	for _, sub := range []string{ProcessedDir, FailedDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return st, fmt.Errorf("path: %w", err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return st, fmt.Errorf("path: %w", err)
	}
	// Oldest name first: Shadowserver's names start with the date.
	slices.SortFunc(entries, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	now := s.opts.Now()
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		name := e.Name()
		if !e.Type().IsRegular() || pending(name) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // gone since ReadDir
		}
		if now.Sub(info.ModTime()) < s.opts.MinAge {
			st.Waiting++
			continue
		}
		if err := s.processFile(ctx, filepath.Join(dir, name), info, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// processFile ingests one file and moves it out of the folder. It returns
// only errors that should stop the poll (the gateway's store failing); the
// file then stays and is read again next time, when the pipeline
// recognises what it already stored.
func (s *Source) processFile(ctx context.Context, path string, info os.FileInfo, st *Stats) error {
	name := filepath.Base(path)
	st.Files++
	if info.Size() > s.opts.MaxFile {
		err := fmt.Errorf("%d bytes is more than the limit of %d", info.Size(), s.opts.MaxFile)
		s.report(ctx, ReasonTooLarge, name, err)
		st.Failed++
		return s.fail(path, err)
	}
	data, err := readFile(path, s.opts.MaxFile)
	if err != nil {
		s.report(ctx, ReasonRead, name, err)
		st.Failed++
		return s.fail(path, err)
	}
	res, err := s.IngestReport(ctx, name, data, info.ModTime())
	var verr *gateway.ValidationError
	switch {
	case errors.As(err, &verr):
		reason := ReasonInvalid
		if len(verr.Fields) == 1 && verr.Fields[0].Field == "file" {
			reason = ReasonUnreadable
		}
		s.report(ctx, reason, name, err)
		st.Failed++
		return s.fail(path, err)
	case err != nil:
		return fmt.Errorf("ingest %s: %w", name, err)
	}
	if res.Status == "duplicate" {
		st.Duplicate++
	} else {
		st.Ingested++
	}
	st.Rows += res.Rows
	st.Unowned += res.Unowned
	if err := move(path, filepath.Join(filepath.Dir(path), ProcessedDir), s.opts.Now()); err != nil {
		// Ingested but not moved: the next scan finds it and the pipeline
		// reports a duplicate, so nothing is sent twice; say so loudly.
		s.report(ctx, ReasonRead, name, fmt.Errorf("ingested but not moved to %s: %w", ProcessedDir, err))
	}
	return nil
}

// fail moves a file to failed/ and writes <name>.reason beside it.
func (s *Source) fail(path string, why error) error {
	failed := filepath.Join(filepath.Dir(path), FailedDir)
	now := s.opts.Now()
	dst, err := moveTo(path, failed, now)
	if err != nil {
		s.log.Error("cannot move a failed report out of the drop folder", "file", path, "error", err)
		return nil // reported; the next scan tries again
	}
	reason := fmt.Sprintf("%s\n%s\n", now.UTC().Format(time.RFC3339), why)
	if err := os.WriteFile(dst+".reason", []byte(reason), 0o640); err != nil {
		s.log.Error("cannot write the reason file", "file", dst+".reason", "error", err)
	}
	return nil
}

func move(path, dir string, now time.Time) error {
	_, err := moveTo(path, dir, now)
	return err
}

// moveTo renames path into dir, adding a time stamp when the name is taken
// (the same report dropped twice), and returns the new path.
func moveTo(path, dir string, now time.Time) (string, error) {
	name := filepath.Base(path)
	dst := filepath.Join(dir, name)
	if _, err := os.Lstat(dst); err == nil {
		dst = filepath.Join(dir, now.UTC().Format("20060102T150405.000000000Z")+"-"+name)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	return dst, nil
}

func readFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("more than %d bytes", limit)
	}
	return data, nil
}
