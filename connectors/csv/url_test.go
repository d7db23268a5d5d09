package csv

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway/httpstatus"
)

// TestFetchStatusClassified: a feed server's refusal is the shared
// StatusError, read by the one classifier as every other client's is.
func TestFetchStatusClassified(t *testing.T) {
	for _, tc := range []struct {
		code       int
		retryAfter string
		want       httpstatus.Decision
	}{
		{http.StatusTooManyRequests, "7", httpstatus.Decision{Class: httpstatus.Defer, After: 7 * time.Second}},
		{http.StatusGone, "", httpstatus.Decision{Class: httpstatus.Permanent}},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			http.Error(w, "nope", tc.code)
		}))
		f, err := newFetcher(srv.URL+"/feed.csv", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := f.get(t.Context(), urlState{})
		srv.Close()
		if resp != nil {
			resp.Body.Close()
		}
		if se, ok := errors.AsType[*httpstatus.StatusError](err); !ok || se.Code != tc.code {
			t.Fatalf("get = %v, want a %d StatusError", err, tc.code)
		}
		if got := httpstatus.Classify(err); got != tc.want {
			t.Errorf("%d: classified %+v, want %+v", tc.code, got, tc.want)
		}
	}
}
