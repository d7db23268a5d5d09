package policy

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// tlpConstants are the labels whose comparison is a policy decision.
var tlpConstants = map[string]bool{"TLPClear": true, "TLPGreen": true, "TLPAmber": true, "TLPAmberStrict": true, "TLPRed": true}

const gatewayImport = "github.com/schakel/schakel/gateway"

// tlpDecisions lists where a file decides on a TLP label: compares a value
// with a gateway.TLP* constant (==, !=, <, …), switches on one, or ranks a
// label (x.TLP.Rank()). Naming a constant elsewhere (a default, a map from
// labels to styles or markings) is not a decision. The check is syntactic:
// a label compared through a variable holding a constant escapes it.
func tlpDecisions(fset *token.FileSet, f *ast.File) []string {
	name := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == gatewayImport {
			name = "gateway"
			if imp.Name != nil {
				name = imp.Name.Name
			}
		}
	}
	isLabel := func(e ast.Expr) bool {
		sel, ok := ast.Unparen(e).(*ast.SelectorExpr)
		if !ok {
			return false
		}
		x, ok := sel.X.(*ast.Ident)
		return ok && name != "" && x.Name == name && tlpConstants[sel.Sel.Name]
	}
	var out []string
	report := func(n ast.Node, what string) {
		out = append(out, fmt.Sprintf("%s: %s", fset.Position(n.Pos()), what))
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BinaryExpr:
			switch n.Op {
			case token.EQL, token.NEQ, token.LSS, token.LEQ, token.GTR, token.GEQ:
				if isLabel(n.X) || isLabel(n.Y) {
					report(n, "compares a TLP label")
				}
			}
		case *ast.CaseClause:
			for _, e := range n.List {
				if isLabel(e) {
					report(e, "switches on a TLP label")
				}
			}
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Rank" {
				break
			}
			if inner, ok := sel.X.(*ast.SelectorExpr); (ok && inner.Sel.Name == "TLP") || isLabel(sel.X) {
				report(n, "ranks a TLP label")
			}
		}
		return true
	})
	return out
}

// TestTLPDecidedOnlyInPolicy keeps the policy the one place that decides on
// TLP (ARCHITECTURE §2, §4): no other package under gateway/, connectors/ or
// cmd/ may compare labels. Mappings (mappings/) translate labels and are not
// checked; neither are tests.
func TestTLPDecidedOnlyInPolicy(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	var found []string
	files := 0
	for _, dir := range []string{"gateway", "connectors", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path == filepath.Join(root, "gateway", "policy") || d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			files++
			found = append(found, tlpDecisions(fset, f)...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 50 {
		t.Fatalf("checked only %d files; is the tree where the test expects it?", files)
	}
	for _, f := range found {
		t.Errorf("%s outside gateway/policy: ask the policy instead", f)
	}
}

// The check must see what it is meant to forbid.
func TestTLPDecisionsDetector(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want int
	}{
		{"equality", `if ev.TLP == gateway.TLPRed {}`, 1},
		{"inequality, constant first", `ok := gateway.TLPAmberStrict != t`, 1},
		{"aliased import", `if ev.TLP == gw.TLPRed {}`, 1},
		{"switch", `switch t { case gateway.TLPGreen, gateway.TLPClear: }`, 2},
		{"rank", `if ev.TLP.Rank() > 3 {}`, 1},
		{"default is not a decision", `ev.TLP = gateway.TLPAmber`, 0},
		{"mapping is not a decision", `m := map[gateway.TLP]string{gateway.TLPRed: "tlp-red"}`, 0},
		{"priority rank is not TLP", `if ev.Priority.Rank() > 2 {}`, 0},
		{"other package's constant", `if x == other.TLPRed {}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imp := `import "github.com/schakel/schakel/gateway"`
			if strings.Contains(tt.src, "gw.") {
				imp = `import gw "github.com/schakel/schakel/gateway"`
			}
			src := "package x\n" + imp + "\nfunc f() {\n" + tt.src + "\n}\n"
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "x.go", src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			if got := tlpDecisions(fset, f); len(got) != tt.want {
				t.Fatalf("found %q, want %d", got, tt.want)
			}
		})
	}
}
