package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/mappings/csaf"
	"github.com/schakel/schakel/mappings/csv"
	mailmap "github.com/schakel/schakel/mappings/mail"
	"github.com/schakel/schakel/mappings/misp"
	"github.com/schakel/schakel/mappings/stix"
)

const convertUsage = `Usage: schakel convert --from misp|stix|csaf|mail|csv --to canonical|misp|stix [flags] < in > out

Converts one document offline with the gateway's own mappings (no Redis,
no network). Each event goes to stdout as one JSON document per line;
problems go to stderr, one line each, naming the field.

Flags:
  --from FORMAT      input format (required)
  --to FORMAT        output format (default canonical)
  --tlp LABEL        TLP for input that carries no label (default AMBER,
                     as the gateway); a label in the input is kept
  --profile NAME     CSV profile (default shadowserver)
  --name FILE        CSV file name, for the report date and type
                     (e.g. 2026-11-20-scan_exchange-nl.csv)
  --org NAME         producer named in MISP (Orgc/Org, default Schakel)
                     and STIX (identity; default the event's source)

Exit status: 0 converted (a "warning:" line per element left out or
questioned), 1 the input cannot be converted, 2 usage error.
`

// maxConvertInput bounds what convert reads from stdin.
const maxConvertInput = 64 << 20

// csvProfiles are the CSV profiles convert knows by name.
var csvProfiles = map[string]csv.Profile{"shadowserver": csv.Shadowserver}

type convertOptions struct {
	from, to, profile, name, org string
	tlp                          gateway.TLP
}

// convert is `schakel convert`: stdin → stdout, problems on stderr, and the
// exit status.
func convert(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseConvertFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, convertUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "schakel convert: %v\n\n%s", err, convertUsage)
		return 2
	}
	data, err := io.ReadAll(io.LimitReader(stdin, maxConvertInput+1))
	if err != nil {
		fmt.Fprintf(stderr, "schakel convert: error: read stdin: %v\n", err)
		return 1
	}
	if len(data) > maxConvertInput {
		fmt.Fprintf(stderr, "schakel convert: error: input is larger than %d MiB\n", maxConvertInput>>20)
		return 1
	}
	out, warnings, err := convertData(data, o)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "schakel convert: warning: %s\n", w.Error())
	}
	if err != nil {
		var ve *gateway.ValidationError
		if errors.As(err, &ve) {
			for _, f := range ve.Fields {
				fmt.Fprintf(stderr, "schakel convert: error: %s\n", f.Error())
			}
		} else {
			fmt.Fprintf(stderr, "schakel convert: error: %v\n", err)
		}
		return 1
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "schakel convert: error: write stdout: %v\n", err)
		return 1
	}
	return 0
}

func parseConvertFlags(args []string, stderr io.Writer) (convertOptions, error) {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o convertOptions
	var tlp string
	fs.StringVar(&o.from, "from", "", "")
	fs.StringVar(&o.to, "to", "canonical", "")
	fs.StringVar(&tlp, "tlp", "", "")
	fs.StringVar(&o.profile, "profile", "shadowserver", "")
	fs.StringVar(&o.name, "name", "", "")
	fs.StringVar(&o.org, "org", "", "")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: the input is read from stdin", fs.Arg(0))
	}
	switch o.from {
	case "misp", "stix", "csaf", "mail", "csv":
	case "":
		return o, errors.New("--from is required")
	default:
		return o, fmt.Errorf("--from %q: want misp, stix, csaf, mail or csv", o.from)
	}
	switch o.to {
	case "canonical", "misp", "stix":
	default:
		return o, fmt.Errorf("--to %q: want canonical, misp or stix", o.to)
	}
	if _, ok := csvProfiles[o.profile]; !ok {
		return o, fmt.Errorf("--profile %q: known profiles: shadowserver", o.profile)
	}
	o.tlp = gateway.TLPAmber
	if tlp != "" {
		t, _, err := gateway.ParseTLP(tlp)
		if err != nil {
			return o, fmt.Errorf("--tlp: %w", err)
		}
		o.tlp = t
	}
	return o, nil
}

// convertData decodes data, applies the gateway's ingest normalisation and
// defaults, and encodes every event, one JSON document per line. warnings
// are the problems with parts of the input that were left out or
// questioned; err (a *gateway.ValidationError when fields are to blame)
// means nothing is written.
func convertData(data []byte, o convertOptions) ([]byte, []gateway.FieldError, error) {
	evs, warnings, err := decodeAs(o, data)
	if err != nil {
		return nil, warnings, err
	}
	if len(evs) == 0 {
		if len(warnings) == 0 {
			warnings = []gateway.FieldError{{Message: "the input holds no event"}}
		}
		return nil, nil, &gateway.ValidationError{Fields: warnings}
	}
	now := time.Now().UTC()
	var out bytes.Buffer
	for i, ev := range evs {
		at := ""
		if len(evs) > 1 {
			at = fmt.Sprintf("/events/%d", i)
		}
		problems := normalize.Event(ev)
		var fatal []gateway.FieldError
		for _, p := range problems {
			p.Field = at + p.Field
			if strings.HasPrefix(p.Field, at+"/indicators/") {
				p.Message += " (left out)"
				warnings = append(warnings, p)
			} else {
				fatal = append(fatal, p)
			}
		}
		if len(fatal) > 0 {
			return nil, warnings, &gateway.ValidationError{Fields: fatal}
		}
		// The gateway's own defaults; offline the source is named by the
		// input's format, so a derived id matches a gateway source of
		// that name.
		name := ev.Source.Name
		if name == "" {
			name = ev.Source.Format
		}
		pipeline.Defaults(ev, gateway.Source{Name: name, DefaultTLP: o.tlp, Format: ev.Source.Format}, now)
		b, err := encodeAs(o, ev)
		if err != nil {
			return nil, warnings, fmt.Errorf("event %s: %w", ev.ID, err)
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	return out.Bytes(), warnings, nil
}

func decodeAs(o convertOptions, data []byte) ([]*gateway.Event, []gateway.FieldError, error) {
	switch o.from {
	case "misp":
		return misp.Decode(data)
	case "stix":
		return stix.Decode(data)
	case "csaf":
		return csaf.Decode(data)
	case "mail":
		return mailmap.DecodeMessage(data, mailmap.Options{CSAF: csaf.Decode, MISP: misp.Decode, STIX: stix.Decode})
	case "csv":
		ev, problems, err := csv.DecodeReport(csvProfiles[o.profile], csv.Report{Name: o.name, Data: data})
		if err != nil {
			return nil, nil, err
		}
		return []*gateway.Event{ev}, problems, nil
	}
	return nil, nil, fmt.Errorf("--from %q: unknown format", o.from)
}

func encodeAs(o convertOptions, ev *gateway.Event) ([]byte, error) {
	switch o.to {
	case "misp":
		org := o.org
		if org == "" {
			org = "Schakel"
		}
		return misp.Encode(ev, misp.EncodeOptions{OrgName: org, Published: true})
	case "stix":
		return stix.Encode(ev, stix.EncodeOptions{IdentityName: o.org})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
