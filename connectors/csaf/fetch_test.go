package csaf

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway/httpstatus"
)

// TestFetchStatusClassified: a provider's refusal is the shared StatusError,
// read by the one classifier as every other client's is; 404 and 410 still
// mean "not published" for a sidecar.
func TestFetchStatusClassified(t *testing.T) {
	for _, tc := range []struct {
		code       int
		retryAfter string
		want       httpstatus.Decision
		notFound   bool
	}{
		{http.StatusTooManyRequests, "7", httpstatus.Decision{Class: httpstatus.Defer, After: 7 * time.Second}, false},
		{http.StatusGone, "", httpstatus.Decision{Class: httpstatus.Permanent}, true},
		{http.StatusNotFound, "", httpstatus.Decision{Class: httpstatus.Permanent}, true},
		{http.StatusInternalServerError, "", httpstatus.Decision{Class: httpstatus.Retry}, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			http.Error(w, "nope", tc.code)
		}))
		_, err := newFetcher(nil, true, "").get(t.Context(), srv.URL+"/a.json", 1024)
		srv.Close()
		if se, ok := errors.AsType[*httpstatus.StatusError](err); !ok || se.Code != tc.code {
			t.Fatalf("get = %v, want a %d StatusError", err, tc.code)
		}
		if got := httpstatus.Classify(err); got != tc.want {
			t.Errorf("%d: classified %+v, want %+v", tc.code, got, tc.want)
		}
		if notFound(err) != tc.notFound {
			t.Errorf("%d: notFound = %v, want %v", tc.code, notFound(err), tc.notFound)
		}
	}
}
