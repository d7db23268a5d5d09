// Package schakel_test enforces the layering of ARCHITECTURE §2 (see
// docs/adr/0005-layering.md) over the real import graph, as go list reports it.
package schakel_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/schakel/schakel"

// Layers are the top-level folders of ARCHITECTURE §2.
type layer int

const (
	layerUnknown layer = iota // a folder the layout does not name
	layerModule               // the module root (this test)
	layerGatewayRoot
	layerGateway // gateway/<pkg>
	layerMappings
	layerConnectors
	layerSchemas
	layerCmd
)

// classify returns the layer of a module-relative package path and its unit:
// the package that owns subpackages ("connectors/mail" for
// connectors/mail/mailtest), so a connector may use its own test helpers.
func classify(rel string) (layer, string) {
	parts := strings.Split(rel, "/")
	unit := parts[0]
	if len(parts) > 1 {
		unit = parts[0] + "/" + parts[1]
	}
	switch {
	case rel == "":
		return layerModule, ""
	case rel == "gateway":
		return layerGatewayRoot, rel
	case parts[0] == "gateway":
		return layerGateway, unit
	case parts[0] == "mappings":
		return layerMappings, unit
	case parts[0] == "connectors":
		return layerConnectors, unit
	case parts[0] == "schemas":
		return layerSchemas, "schemas"
	case parts[0] == "cmd":
		return layerCmd, unit
	}
	return layerUnknown, unit
}

// inModule returns p relative to the module, or ok false for other modules.
func inModule(p string) (rel string, ok bool) {
	if p == module {
		return "", true
	}
	return strings.CutPrefix(p, module+"/")
}

// isStdlib uses the go command's own rule: a standard-library path has no
// dot in its first element.
func isStdlib(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

// check returns why importer may not import imp ("" when it may), both
// given as full import paths. test is true for imports of _test.go files.
//
// Test files obey every rule about the direction of dependencies (gateway
// never reaches connectors, connectors never reach each other, nothing
// reaches cmd/), since a test importing across a boundary couples the
// layers as much as production code does. Three things are relaxed for
// them, because they are fixtures rather than dependencies: any third-party
// module (the stdlib-only and jsonschema-only rules guard what ships, and a
// test may parse YAML or run miniredis); and the shared golden runner
// mappings/golden for mapping tests.
//
// schemas may import the root package gateway, for its FieldError: that
// package imports only the standard library, so schemas still depends on
// nothing but the standard library and jsonschema.
func check(importer, imp string, test bool) string {
	irel, ok := inModule(importer)
	if !ok {
		return ""
	}
	il, iunit := classify(irel)
	mrel, inMod := inModule(imp)
	if !inMod {
		if isStdlib(imp) || test {
			return ""
		}
		switch il {
		case layerGatewayRoot:
			return "the root package gateway imports the standard library only"
		case layerSchemas:
			if imp == "github.com/santhosh-tekuri/jsonschema/v5" || strings.HasPrefix(imp, "github.com/santhosh-tekuri/jsonschema/v5/") {
				return ""
			}
			return "schemas imports only the standard library, jsonschema and the root package gateway"
		}
		return ""
	}
	ml, munit := classify(mrel)
	if ml == layerCmd {
		return "nothing imports cmd/"
	}
	switch il {
	case layerModule, layerCmd:
		return ""
	case layerGatewayRoot:
		return "the root package gateway imports the standard library only"
	case layerGateway:
		switch ml {
		case layerGatewayRoot, layerGateway, layerSchemas:
			return ""
		case layerConnectors:
			return "nothing in gateway/ imports connectors/"
		}
		return "gateway/<pkg> imports only gateway, gateway/<pkg> and schemas"
	case layerMappings:
		switch {
		case ml == layerGatewayRoot, mrel == "gateway/normalize", ml == layerSchemas, munit == iunit:
			return ""
		case test && mrel == "mappings/golden":
			return ""
		case ml == layerConnectors:
			return "mappings import no connector"
		case ml == layerGateway:
			return "mappings import no core package but gateway/normalize (they are pure translations)"
		}
		return "mappings import only gateway, gateway/normalize, schemas and their own subpackages"
	case layerConnectors:
		switch {
		case munit == iunit:
			return ""
		case ml == layerConnectors:
			return "connectors never import each other"
		case ml == layerGatewayRoot, ml == layerGateway, ml == layerMappings, ml == layerSchemas:
			return ""
		}
		return "connectors import only gateway, gateway/<pkg>, mappings and schemas"
	case layerSchemas:
		if ml == layerSchemas || ml == layerGatewayRoot {
			return ""
		}
		return "schemas imports only the standard library, jsonschema and the root package gateway"
	}
	return "top-level folder " + strings.SplitN(irel, "/", 2)[0] + "/ is not in the layout of ARCHITECTURE §2"
}

type listed struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

func TestLayering(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to read the import graph: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Error", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	n := 0
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Errorf("%s: %s", p.ImportPath, p.Error.Err)
		}
		n++
		for _, set := range []struct {
			imports []string
			test    bool
		}{{p.Imports, false}, {p.TestImports, true}, {p.XTestImports, true}} {
			for _, imp := range set.imports {
				if why := check(p.ImportPath, imp, set.test); why != "" {
					where := ""
					if set.test {
						where = " (in a _test.go file)"
					}
					t.Errorf("%s imports %s%s: %s", p.ImportPath, imp, where, why)
				}
			}
		}
	}
	// Guard against a pattern that matched nothing and so checked nothing.
	if n < 10 {
		t.Fatalf("go list reported %d packages; expected the whole module", n)
	}
}

// TestLayeringRules pins the rules themselves, so a loosened check shows up
// here even while the tree is clean.
func TestLayeringRules(t *testing.T) {
	m := func(rel string) string { return module + "/" + rel }
	cases := []struct {
		importer, imp string
		test          bool
		broken        bool
	}{
		{m("gateway"), "context", false, false},
		{m("gateway"), "github.com/redis/go-redis/v9", false, true},
		{m("gateway"), m("schemas"), false, true},
		{m("gateway/httpapi"), m("connectors/webhook"), false, true},
		{m("gateway/httpapi"), m("connectors/webhook"), true, true},
		{m("gateway/httpapi"), m("gateway/store"), false, false},
		{m("gateway/httpapi"), m("schemas"), false, false},
		{m("gateway/httpapi"), "github.com/gofiber/fiber/v2", false, false},
		{m("gateway/console"), m("mappings/misp"), false, true},
		{m("gateway/store"), m("cmd/schakel"), false, true},
		{m("mappings/misp"), m("gateway/normalize"), false, false},
		{m("mappings/misp"), m("gateway/store"), false, true},
		{m("mappings/misp"), m("gateway/pipeline"), true, true},
		{m("mappings/stix"), m("mappings/misp"), false, true},
		{m("mappings/stix"), m("mappings/golden"), true, false},
		{m("mappings/stix"), m("mappings/golden"), false, true},
		{m("mappings/csaf"), m("schemas/csaf"), false, false},
		{m("mappings/mail"), m("connectors/mail"), false, true},
		{m("connectors/misp"), m("gateway/httpapi"), false, false},
		{m("connectors/misp"), m("mappings/misp"), false, false},
		{m("connectors/misp"), m("connectors/webhook"), false, true},
		{m("connectors/misp"), m("connectors/webhook/webhooktest"), true, true},
		{m("connectors/mail"), m("connectors/mail/mailtest"), true, false},
		{m("connectors/mail/mailtest"), m("connectors/mail"), false, false},
		{m("connectors/csv"), m("cmd/schakel"), true, true},
		{m("schemas"), "github.com/santhosh-tekuri/jsonschema/v5", false, false},
		{m("schemas"), "gopkg.in/yaml.v3", false, true},
		{m("schemas"), "gopkg.in/yaml.v3", true, false},
		{m("schemas"), m("gateway"), false, false},
		{m("schemas"), m("gateway/store"), false, true},
		{m("schemas"), m("gateway/normalize"), true, true},
		{m("schemas/csaf"), m("schemas"), false, false},
		{m("cmd/schakel"), m("connectors/misp"), false, false},
		{m("cmd/bench"), m("cmd/schakel"), false, true},
		{m("internal/x"), "fmt", false, false},
		{m("internal/x"), m("gateway"), false, true},
	}
	for _, c := range cases {
		why := check(c.importer, c.imp, c.test)
		if (why != "") != c.broken {
			t.Errorf("check(%s, %s, test=%v) = %q, want broken=%v", c.importer, c.imp, c.test, why, c.broken)
		}
	}
}
