// Command bench is the benchmark harness behind `make bench`: it runs the
// project's Go benchmarks that carry a reported figure, prints one table and
// writes the figures as JSON ({"name": {"value": N, "unit": "…"}}).
//
// Benchmarks use $REDIS_URL when set (real Redis) and an embedded miniredis
// otherwise; the table says which.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one published number: which benchmark produces it, under which
// reported unit, and the name it is published under.
type figure struct {
	Pkg, Bench, Metric string
	Name, Unit         string
	Target             string
	CPUs               int    // GOMAXPROCS for the run; 0 = all
	Time               string // -benchtime; default 1x (one full scenario)
}

var figures = []figure{
	{Pkg: "./cmd/schakel", Bench: "BenchmarkIngestWebhookThroughput$", Metric: "ingest_webhook_events_per_s", Name: "ingest_webhook_events_per_s", Unit: "events/s", Target: ">= 5000"},
	{Pkg: "./cmd/schakel", Bench: "BenchmarkIngestWebhookThroughput$", Metric: "http_noop_posts_per_s", Name: "http_noop_posts_per_s", Unit: "posts/s", Target: "(same load, no-op handler, same listener)"},
	{Pkg: "./cmd/schakel", Bench: "BenchmarkIngestWebhookThroughput$", Metric: "ingest_to_noop_ratio", Name: "ingest_webhook_to_noop_ratio", Unit: "ratio", Target: ">= 0.33"},
	{Pkg: "./cmd/schakel", Bench: "BenchmarkIngestWebhookThroughput$", Metric: "ingest_webhook_indicators_per_s", Name: "ingest_webhook_indicators_per_s", Unit: "indicators/s"},
	{Pkg: "./cmd/schakel", Bench: "BenchmarkIngestWebhookLatency$", Metric: "ingest_webhook_p50_ms", Name: "ingest_webhook_p50_ms", Unit: "ms", Target: "(at 1,000 events/s)"},
	{Pkg: "./cmd/schakel", Bench: "BenchmarkIngestWebhookLatency$", Metric: "ingest_webhook_p99_ms", Name: "ingest_webhook_p99_ms", Unit: "ms", Target: "< 50 at 1,000 events/s"},
	{Pkg: "./gateway/assets", Bench: "BenchmarkOwnersOfIP_1M/mixed$", Metric: "lookups/s", Name: "matcher_lookups_per_s", Unit: "lookups/s", Target: ">= 5,000,000 (1 core, 1M prefixes)", CPUs: 1, Time: "2s"},
	{Pkg: "./gateway/assets", Bench: "BenchmarkBuild_1M$", Metric: "matcher-MiB", Name: "matcher_1m_heap_mib", Unit: "MiB"},
	{Pkg: "./mappings/stix", Bench: "BenchmarkDecode$", Metric: "stix_map_indicators_per_s", Name: "stix_map_indicators_per_s", Unit: "indicators/s", Target: ">= 20,000 per core", CPUs: 1, Time: "2s"},
	{Pkg: "./mappings/stix", Bench: "BenchmarkRoundTrip$", Metric: "stix_roundtrip_objects_per_s", Name: "stix_roundtrip_objects_per_s", Unit: "objects/s", Target: ">= 50,000 per core (10k-object bundle)", CPUs: 1, Time: "2s"},
	{Pkg: "./mappings/misp", Bench: "BenchmarkRoundTripObjects$", Metric: "misp_roundtrip_objects_per_s", Name: "misp_roundtrip_objects_per_s", Unit: "objects/s", Target: "(1,000 objects, 4 attributes and 2 references each)", CPUs: 1, Time: "2s"},
	{Pkg: "./mappings/mail", Bench: "BenchmarkDecode/sector-warning-amber$", Metric: "mail_parse_per_s", Name: "mail_parse_per_s", Unit: "messages/s", Target: ">= 2,000 per core", CPUs: 1, Time: "2s"},
	{Pkg: "./connectors/mail", Bench: "BenchmarkSend$", Metric: "mail_send_per_s", Name: "mail_send_per_s", Unit: "messages/s", Target: ">= 200 (local relay, connection reuse)", Time: "2s"},
	{Pkg: "./connectors/misp", Bench: "BenchmarkIndex100k$", Metric: "misp_index_100k_p50_ms", Name: "misp_index_100k_p50_ms", Unit: "ms", Target: "< 300 (100k events)"},
	{Pkg: "./connectors/misp", Bench: "BenchmarkAttributesRestSearch250k$", Metric: "misp_restsearch_250k_s", Name: "misp_restsearch_250k_s", Unit: "s", Target: "< 3 (250k attributes)"},
	{Pkg: "./connectors/misp", Bench: "BenchmarkObjectsRestSearch100k$", Metric: "misp_objects_restsearch_100k_s", Name: "misp_objects_restsearch_100k_s", Unit: "s", Target: "<= 2 (100k objects)"},
	{Pkg: "./connectors/misp", Bench: "BenchmarkPush10k$", Metric: "misp_push_10k_s", Name: "misp_push_10k_s", Unit: "s", Target: "< 1 (10k-attribute push-in)"},
	{Pkg: "./connectors/taxii", Bench: "BenchmarkPage1000$", Metric: "taxii_page_1000_p50_ms", Name: "taxii_page_1000_p50_ms", Unit: "ms", Target: "< 100 (100k objects in the collection)"},
	{Pkg: "./connectors/csv", Bench: "BenchmarkCSV100kRoute$", Metric: "csv_100k_route_s", Name: "csv_100k_route_s", Unit: "s", Target: "< 4 (100k rows, 10k constituents)"},
}

var line = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func main() {
	out := flag.String("out", "bench/results.json", "where to write the JSON results")
	only := flag.String("only", "", "run only figures whose name contains this")
	flag.Parse()
	backend := "embedded miniredis"
	if u := os.Getenv("REDIS_URL"); u != "" {
		backend = "Redis at " + u
	}
	results := map[string]map[string]any{}
	type key struct {
		pkg, bench, time string
		cpus             int
	}
	ran := map[key]map[string]float64{}
	for _, f := range figures {
		if *only != "" && !strings.Contains(f.Name, *only) {
			continue
		}
		k := key{f.Pkg, f.Bench, f.Time, f.CPUs}
		if _, ok := ran[k]; !ok {
			m, err := run(f)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: %s %s: %v\n", f.Pkg, f.Bench, err)
				os.Exit(1)
			}
			ran[k] = m
		}
		if v, ok := ran[k][f.Metric]; ok {
			results[f.Name] = map[string]any{"value": v, "unit": f.Unit}
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "figure\tvalue\tunit\ttarget\n")
	for _, f := range figures {
		r, ok := results[f.Name]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, format(r["value"].(float64)), f.Unit, f.Target)
	}
	tw.Flush()
	fmt.Printf("\nbackend: %s; %s\n", backend, time.Now().UTC().Format(time.RFC3339))
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	b, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s\n", *out)
}

// run executes one benchmark and returns its reported metrics by unit.
func run(f figure) (map[string]float64, error) {
	bt := f.Time
	if bt == "" {
		bt = "1x"
	}
	args := []string{"test", "-run", "^$", "-bench", "^" + f.Bench, "-benchtime", bt, "-count", "1"}
	if f.CPUs > 0 {
		args = append(args, "-cpu", strconv.Itoa(f.CPUs))
	}
	args = append(args, f.Pkg)
	cmd := exec.Command("go", args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	fmt.Fprintf(os.Stderr, "running %s %s …\n", f.Pkg, f.Bench)
	if err := cmd.Run(); err != nil {
		os.Stderr.Write(stdout.Bytes())
		return nil, err
	}
	metrics := map[string]float64{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		fields := strings.Fields(m[2])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err == nil {
				metrics[fields[i+1]] = v
			}
		}
	}
	return metrics, nil
}

func format(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}
