// Command schakel is the Schakel gateway: one binary with sub-commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `schakel — MISP-compatible integration gateway for CSIRTs

Usage:
  schakel serve --config FILE              run the gateway
  schakel check-config --config FILE       validate a configuration and exit
  schakel keys create --role admin         print a fresh admin key for admin.keys_file
  schakel keys create --role source|constituent --name NAME [--config FILE | --url URL --key ADMINKEY]
  schakel constituents import FILE         import constituents (YAML or CSV) through the admin API
                                           [--config FILE | --url URL --key ADMINKEY]
  schakel explain --event ID --constituent ID [--config FILE | --url URL --key ADMINKEY]
  schakel sink [--webhook ADDR --secret whsec_…] [--smtp ADDR]
                                           print verified webhook deliveries and received mail
                                           (a receiver for trying Schakel out on one machine)
  schakel convert --from misp|stix|csaf|mail|csv --to canonical|misp|stix [--tlp X] < in > out
                                           convert offline with the gateway's mappings
  schakel version
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stderr)
	case "check-config":
		err = cmdCheckConfig(args[1:], stdout)
	case "keys":
		err = cmdKeys(ctx, args[1:], stdout)
	case "constituents":
		err = cmdConstituents(ctx, args[1:], stdout, stderr)
	case "explain":
		err = cmdExplain(ctx, args[1:], stdout)
	case "sink":
		err = cmdSink(ctx, args[1:], stdout, stderr)
	case "convert":
		return convert(args[1:], os.Stdin, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "schakel", version)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		var he helpError
		if errors.As(err, &he) {
			fmt.Fprintf(stdout, "%s\nFlags of %s:\n%s", usage, he.cmd, he.flags)
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "%v\n\n%s", err, usage)
			return 2
		}
		fmt.Fprintln(stderr, "schakel:", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// helpError is -h or --help: run prints the usage and the command's flags
// to stdout and exits 0.
type helpError struct{ cmd, flags string }

func (e helpError) Error() string { return "help requested" }

// parseFlags parses args into fs. The flag package's own output is
// dropped: run prints a bad flag with the usage, and help to stdout.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		return helpError{cmd: fs.Name(), flags: b.String()}
	case err != nil:
		return usageError{err.Error()}
	}
	return nil
}
