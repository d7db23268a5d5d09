package stix

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits on what the pattern reader accepts; longer or deeper patterns are
// kept whole as "other" rather than read.
const (
	MaxPatternBytes = 64 << 10
	maxPatternDepth = 32
	maxComparisons  = 1000
)

// comparison is one "object-type:path = literal" test. Path keeps quoted
// keys without their quotes ("hashes.SHA-256"). Str holds a string
// literal, Num an integer literal; IsNum says which.
type comparison struct {
	Object string
	Path   string
	Str    string
	Num    int64
	IsNum  bool
}

// alternatives reads a STIX pattern and returns it as a disjunction of
// conjunctions of equality tests, when it is one: "[a = 'x'] OR [b = 'y']",
// "[a = 'x' OR b = 'y']" and "[a = 'x' AND b = 'y']" qualify. ok is false
// for anything with other semantics (other operators, NOT, EXISTS,
// observation-level AND or FOLLOWEDBY, qualifiers, binary/hex/timestamp
// literals, floats) and err is set only for text that is not a pattern.
func alternatives(pattern string) (alts [][]comparison, ok bool, err error) {
	if len(pattern) > MaxPatternBytes {
		return nil, false, nil
	}
	p := &parser{lex: lexer{src: pattern}}
	p.next()
	n, err := p.observations(0)
	if err != nil {
		return nil, false, err
	}
	if p.tok.kind != tEOF {
		return nil, false, p.errorf("unexpected %s", p.tok)
	}
	if !n.simple {
		return nil, false, nil
	}
	return n.alts, true, nil
}

// node is the reduced form of a sub-expression: simple means it is an OR
// of ANDs of equality tests, listed in alts.
type node struct {
	simple bool
	alts   [][]comparison
}

var complexNode = node{}

func orNodes(a, b node) node {
	if !a.simple || !b.simple || len(a.alts)+len(b.alts) > maxComparisons {
		return complexNode
	}
	return node{simple: true, alts: append(a.alts, b.alts...)}
}

// andComparisons joins two comparison expressions inside one observation;
// only single conjunctions stay simple (no distribution over OR).
func andComparisons(a, b node) node {
	if !a.simple || !b.simple || len(a.alts) != 1 || len(b.alts) != 1 || len(a.alts[0])+len(b.alts[0]) > maxComparisons {
		return complexNode
	}
	c := append(append([]comparison{}, a.alts[0]...), b.alts[0]...)
	return node{simple: true, alts: [][]comparison{c}}
}

type parser struct {
	lex lexer
	tok token
}

func (p *parser) next() { p.tok = p.lex.next() }

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("pattern: at byte %d: %s", p.tok.pos, fmt.Sprintf(format, args...))
}

func (p *parser) keyword(w string) bool { return p.tok.kind == tWord && p.tok.text == w }

// observations := obsOr (FOLLOWEDBY obsOr)*
func (p *parser) observations(depth int) (node, error) {
	if depth > maxPatternDepth {
		return node{}, p.errorf("nested more than %d levels deep", maxPatternDepth)
	}
	n, err := p.obsOr(depth)
	if err != nil {
		return n, err
	}
	for p.keyword("FOLLOWEDBY") {
		p.next()
		if _, err := p.obsOr(depth); err != nil {
			return n, err
		}
		n = complexNode
	}
	return n, nil
}

// obsOr := obsAnd (OR obsAnd)*
func (p *parser) obsOr(depth int) (node, error) {
	n, err := p.obsAnd(depth)
	if err != nil {
		return n, err
	}
	for p.keyword("OR") {
		p.next()
		m, err := p.obsAnd(depth)
		if err != nil {
			return n, err
		}
		n = orNodes(n, m)
	}
	return n, nil
}

// obsAnd := observation (AND observation)*; two observations that must both
// be seen are not one indicator.
func (p *parser) obsAnd(depth int) (node, error) {
	n, err := p.observation(depth)
	if err != nil {
		return n, err
	}
	for p.keyword("AND") {
		p.next()
		if _, err := p.observation(depth); err != nil {
			return n, err
		}
		n = complexNode
	}
	return n, nil
}

// observation := '[' comparisons ']' qualifier* | '(' observations ')' qualifier*
func (p *parser) observation(depth int) (node, error) {
	var n node
	var err error
	switch p.tok.kind {
	case tLBrack:
		p.next()
		if n, err = p.compOr(depth + 1); err != nil {
			return n, err
		}
		if p.tok.kind != tRBrack {
			return n, p.errorf("expected ] but found %s", p.tok)
		}
		p.next()
	case tLParen:
		p.next()
		if n, err = p.observations(depth + 1); err != nil {
			return n, err
		}
		if p.tok.kind != tRParen {
			return n, p.errorf("expected ) but found %s", p.tok)
		}
		p.next()
	default:
		return n, p.errorf("expected [ or ( but found %s", p.tok)
	}
	for p.tok.kind == tWord {
		switch p.tok.text {
		case "WITHIN", "REPEATS", "START":
			if err := p.qualifier(); err != nil {
				return n, err
			}
			n = complexNode
		default:
			return n, nil
		}
	}
	return n, nil
}

// qualifier := WITHIN number SECONDS | REPEATS int TIMES | START t'…' STOP t'…'
func (p *parser) qualifier() error {
	kw := p.tok.text
	p.next()
	switch kw {
	case "WITHIN", "REPEATS":
		if p.tok.kind != tInt && p.tok.kind != tFloat {
			return p.errorf("%s needs a number", kw)
		}
		p.next()
		want := map[string]string{"WITHIN": "SECONDS", "REPEATS": "TIMES"}[kw]
		if !p.keyword(want) {
			return p.errorf("%s needs %s", kw, want)
		}
		p.next()
	case "START":
		if p.tok.kind != tTyped {
			return p.errorf("START needs a timestamp")
		}
		p.next()
		if !p.keyword("STOP") {
			return p.errorf("START needs STOP")
		}
		p.next()
		if p.tok.kind != tTyped {
			return p.errorf("STOP needs a timestamp")
		}
		p.next()
	}
	return nil
}

// compOr := compAnd (OR compAnd)*
func (p *parser) compOr(depth int) (node, error) {
	n, err := p.compAnd(depth)
	if err != nil {
		return n, err
	}
	for p.keyword("OR") {
		p.next()
		m, err := p.compAnd(depth)
		if err != nil {
			return n, err
		}
		n = orNodes(n, m)
	}
	return n, nil
}

// compAnd := test (AND test)*
func (p *parser) compAnd(depth int) (node, error) {
	n, err := p.test(depth)
	if err != nil {
		return n, err
	}
	for p.keyword("AND") {
		p.next()
		m, err := p.test(depth)
		if err != nil {
			return n, err
		}
		n = andComparisons(n, m)
	}
	return n, nil
}

// test := '(' compOr ')' | EXISTS path | path NOT? op literal
func (p *parser) test(depth int) (node, error) {
	if depth > maxPatternDepth {
		return node{}, p.errorf("nested more than %d levels deep", maxPatternDepth)
	}
	switch {
	case p.tok.kind == tLParen:
		p.next()
		n, err := p.compOr(depth + 1)
		if err != nil {
			return n, err
		}
		if p.tok.kind != tRParen {
			return n, p.errorf("expected ) but found %s", p.tok)
		}
		p.next()
		return n, nil
	case p.keyword("EXISTS"):
		p.next()
		if p.tok.kind != tPath {
			return node{}, p.errorf("EXISTS needs an object path")
		}
		p.next()
		return complexNode, nil
	case p.tok.kind != tPath:
		return node{}, p.errorf("expected an object path but found %s", p.tok)
	}
	c := comparison{Object: p.tok.object, Path: p.tok.text}
	p.next()
	negated := false
	if p.keyword("NOT") {
		negated = true
		p.next()
	}
	simple := !negated
	switch {
	case p.tok.kind == tOp:
		simple = simple && p.tok.text == "="
		p.next()
	case p.tok.kind == tWord && (p.tok.text == "LIKE" || p.tok.text == "MATCHES" || p.tok.text == "ISSUBSET" || p.tok.text == "ISSUPERSET"):
		simple = false
		p.next()
	case p.keyword("IN"):
		p.next()
		if err := p.set(); err != nil {
			return node{}, err
		}
		return complexNode, nil
	default:
		return node{}, p.errorf("expected a comparison operator but found %s", p.tok)
	}
	switch p.tok.kind {
	case tString:
		c.Str = p.tok.text
	case tInt:
		n, err := strconv.ParseInt(p.tok.text, 10, 64)
		if err != nil {
			simple = false
		}
		c.Num, c.IsNum = n, true
	case tFloat, tBool, tTyped:
		simple = false
	default:
		return node{}, p.errorf("expected a literal but found %s", p.tok)
	}
	p.next()
	if !simple {
		return complexNode, nil
	}
	return node{simple: true, alts: [][]comparison{{c}}}, nil
}

// set := '(' literal (',' literal)* ')'
func (p *parser) set() error {
	if p.tok.kind != tLParen {
		return p.errorf("IN needs a ( list )")
	}
	p.next()
	for {
		switch p.tok.kind {
		case tString, tInt, tFloat, tBool, tTyped:
			p.next()
		default:
			return p.errorf("expected a literal in the IN list but found %s", p.tok)
		}
		if p.tok.kind == tRParen {
			p.next()
			return nil
		}
		if p.tok.kind != tComma {
			return p.errorf("expected , or ) but found %s", p.tok)
		}
		p.next()
	}
}

type tokKind int

const (
	tEOF tokKind = iota
	tLBrack
	tRBrack
	tLParen
	tRParen
	tComma
	tOp
	tString
	tInt
	tFloat
	tBool
	tTyped // h'…', b'…', t'…'
	tWord  // keyword, upper-cased
	tPath
	tBad
)

type token struct {
	kind   tokKind
	text   string // literal value, keyword, operator or property path
	object string // object type of a path
	pos    int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "the end of the pattern"
	case tString:
		return "a string"
	case tPath:
		return "the path " + strconv.Quote(t.object+":"+t.text)
	case tBad:
		return t.text
	}
	if len(t.text) > 20 {
		return strconv.Quote(t.text[:20] + "…")
	}
	return strconv.Quote(t.text)
}

type lexer struct {
	src string
	pos int
}

func (l *lexer) next() token {
	for l.pos < len(l.src) && isSpace(l.src[l.pos]) {
		l.pos++
	}
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tEOF, pos: start}
	}
	c := l.src[l.pos]
	one := func(k tokKind) token {
		l.pos++
		return token{kind: k, text: string(c), pos: start}
	}
	switch {
	case c == '[':
		return one(tLBrack)
	case c == ']':
		return one(tRBrack)
	case c == '(':
		return one(tLParen)
	case c == ')':
		return one(tRParen)
	case c == ',':
		return one(tComma)
	case c == '=':
		l.pos++
		if l.pos < len(l.src) && l.src[l.pos] == '=' {
			l.pos++ // "==" is not STIX; read it so the error is clear
			return token{kind: tOp, text: "==", pos: start}
		}
		return token{kind: tOp, text: "=", pos: start}
	case c == '!' || c == '<' || c == '>':
		l.pos++
		if l.pos < len(l.src) && l.src[l.pos] == '=' {
			l.pos++
		} else if c == '!' {
			return token{kind: tBad, text: "a lone !", pos: start}
		}
		return token{kind: tOp, text: l.src[start:l.pos], pos: start}
	case c == '\'':
		s, err := l.quoted()
		if err != nil {
			return token{kind: tBad, text: err.Error(), pos: start}
		}
		return token{kind: tString, text: s, pos: start}
	case c == '-' || isDigit(c):
		return l.number()
	case isIdentStart(c):
		return l.word()
	}
	l.pos++
	return token{kind: tBad, text: fmt.Sprintf("the character %q", c), pos: start}
}

// quoted reads a single-quoted string; only \\ and \' are escapes.
func (l *lexer) quoted() (string, error) {
	l.pos++ // opening quote
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch c {
		case '\'':
			l.pos++
			return b.String(), nil
		case '\\':
			if l.pos+1 >= len(l.src) || (l.src[l.pos+1] != '\\' && l.src[l.pos+1] != '\'') {
				return "", errors.New("an invalid escape in a string (only \\\\ and \\' are allowed)")
			}
			b.WriteByte(l.src[l.pos+1])
			l.pos += 2
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	return "", errors.New("an unterminated string")
}

func (l *lexer) number() token {
	start := l.pos
	if l.src[l.pos] == '-' || l.src[l.pos] == '+' {
		l.pos++
	}
	digits := l.pos
	for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
		l.pos++
	}
	if l.pos == digits {
		return token{kind: tBad, text: "a sign without digits", pos: start}
	}
	kind := tInt
	if l.pos < len(l.src) && l.src[l.pos] == '.' {
		l.pos++
		for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
			l.pos++
		}
		kind = tFloat
	}
	return token{kind: kind, text: l.src[start:l.pos], pos: start}
}

// word reads a keyword, a boolean, a typed literal (h'…', b'…', t'…') or
// an object path ("file:hashes.'SHA-256'", "x:refs[*].value").
func (l *lexer) word() token {
	start := l.pos
	for l.pos < len(l.src) && isIdent(l.src[l.pos]) {
		l.pos++
	}
	w := l.src[start:l.pos]
	if l.pos < len(l.src) && l.src[l.pos] == '\'' && (w == "h" || w == "b" || w == "t") {
		if _, err := l.quoted(); err != nil {
			return token{kind: tBad, text: err.Error(), pos: start}
		}
		return token{kind: tTyped, text: w, pos: start}
	}
	if l.pos < len(l.src) && l.src[l.pos] == ':' {
		l.pos++
		path, err := l.path()
		if err != nil {
			return token{kind: tBad, text: err.Error(), pos: start}
		}
		return token{kind: tPath, object: w, text: path, pos: start}
	}
	switch w {
	case "true", "false":
		return token{kind: tBool, text: w, pos: start}
	}
	return token{kind: tWord, text: strings.ToUpper(w), pos: start}
}

// path reads the property path after "type:": names joined by '.', a name
// may be quoted, and "[*]" or "[N]" index lists. It returns the path in one
// canonical spelling: names made of letters, digits and _ bare, any other
// name quoted ("hashes.'SHA-256'", whether the input quoted it or not).
func (l *lexer) path() (string, error) {
	var b strings.Builder
	first := true
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case first || c == '.':
			if !first {
				l.pos++
				b.WriteByte('.')
			}
			first = false
			var name string
			if l.pos < len(l.src) && l.src[l.pos] == '\'' {
				s, err := l.quoted()
				if err != nil {
					return "", err
				}
				name = s
			} else {
				n := l.pos
				for l.pos < len(l.src) && isIdent(l.src[l.pos]) {
					l.pos++
				}
				name = l.src[n:l.pos]
			}
			if name == "" {
				return "", errors.New("an object path with an empty property name")
			}
			b.WriteString(pathName(name))
		case c == '[':
			end := strings.IndexByte(l.src[l.pos:], ']')
			if end < 0 {
				return "", errors.New("an unterminated list index")
			}
			idx := l.src[l.pos+1 : l.pos+end]
			if idx != "*" && !allDigits(idx) {
				return "", errors.New("a list index that is not * or a number")
			}
			b.WriteString(l.src[l.pos : l.pos+end+1])
			l.pos += end + 1
		default:
			return b.String(), nil
		}
	}
	return b.String(), nil
}

// pathName spells a property name as a pattern writes it: bare when it is
// letters, digits and _, else quoted.
func pathName(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(isIdentStart(c) || isDigit(c)) {
			return quote(name)
		}
	}
	return name
}

func isSpace(c byte) bool      { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isDigit(c byte) bool      { return '0' <= c && c <= '9' }
func isIdentStart(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' }
func isIdent(c byte) bool      { return isIdentStart(c) || isDigit(c) || c == '-' }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// quote renders s as a STIX pattern string literal: single quotes, with
// \ and ' escaped.
func quote(s string) string {
	if !strings.ContainsAny(s, `\'`) {
		return "'" + s + "'"
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' || s[i] == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}
