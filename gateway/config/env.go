package config

import (
	"fmt"
	"strings"
)

// Environment variables that override single settings, with the JSON
// pointer each one sets.
var envSettings = []struct{ env, ptr string }{
	{"SCHAKEL_LISTEN", "/listen"},
	{"SCHAKEL_PUBLIC_URL", "/public_url"},
	{"SCHAKEL_REDIS_URL", "/redis/url"},
	{"SCHAKEL_REDIS_PREFIX", "/redis/prefix"},
	{"SCHAKEL_TLP_DEFAULT", "/tlp/default"},
	{"SCHAKEL_ADMIN_KEYS_FILE", "/admin/keys_file"},
}

const sourceEnvPrefix = "SCHAKEL_SOURCE_"

// Per-source secret variables: the suffix, the field it sets and the
// *_file field it replaces.
var sourceSecrets = []struct{ suffix, field, file string }{
	{"_SECRET", "secret", "secret_file"},
	{"_KEY", "key", "key_file"},
	{"_PASSWORD", "password", "password_file"},
}

// SourceEnvName is the stem of a source's environment variables:
// "partner-hook" → "SCHAKEL_SOURCE_PARTNER_HOOK" (+ "_SECRET", "_KEY",
// "_PASSWORD").
func SourceEnvName(name string) string {
	r := strings.NewReplacer("-", "_", ".", "_")
	return sourceEnvPrefix + strings.ToUpper(r.Replace(name))
}

// applyEnv writes environment overrides into the document before it is
// validated, remembering where each value came from.
func (p *parser) applyEnv(lookupEnv func(string) (string, bool), environ []string) {
	root, ok := p.doc.(map[string]any)
	if !ok {
		return // the schema reports a non-mapping document
	}
	get := func(env string) (string, bool) {
		v, ok := lookupEnv(env)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	for _, s := range envSettings {
		if v, ok := get(s.env); ok {
			p.set(root, s.ptr, v, s.env)
		}
	}
	if v, ok := get("SCHAKEL_ADMIN_KEYS"); ok {
		var keys []any
		for k := range strings.SplitSeq(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				keys = append(keys, k)
			}
		}
		p.set(root, "/admin/keys", keys, "SCHAKEL_ADMIN_KEYS")
	}

	used := map[string]bool{}
	srcs, _ := root["sources"].([]any)
	for i, s := range srcs {
		src, ok := s.(map[string]any)
		if !ok {
			continue
		}
		name, ok := src["name"].(string)
		if !ok {
			continue
		}
		stem := SourceEnvName(name)
		for _, sec := range sourceSecrets {
			env := stem + sec.suffix
			used[env] = true
			v, ok := get(env)
			if !ok {
				continue
			}
			src[sec.field] = v
			delete(src, sec.file)
			p.origin[fmt.Sprintf("/sources/%d/%s", i, sec.field)] = env
		}
	}
	// A variable for a source that does not exist is most likely a typo
	// that would leave a real source without its secret.
	for _, kv := range environ {
		env, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(env, sourceEnvPrefix) || used[env] || strings.TrimSpace(v) == "" {
			continue
		}
		for _, sec := range sourceSecrets {
			if strings.HasSuffix(env, sec.suffix) {
				p.errs = append(p.errs, &Error{Env: env, Message: "no source has this name; expected one of " + strings.Join(knownStems(srcs), ", ")})
				break
			}
		}
	}
}

func knownStems(srcs []any) []string {
	var out []string
	for _, s := range srcs {
		if src, ok := s.(map[string]any); ok {
			if name, ok := src["name"].(string); ok {
				out = append(out, SourceEnvName(name)+"_*")
			}
		}
	}
	if len(out) == 0 {
		return []string{"(no sources configured)"}
	}
	return out
}

// set stores v at a pointer of two levels at most, creating the parent
// mapping when absent. A parent of the wrong type is left for the schema
// to report.
func (p *parser) set(root map[string]any, ptr string, v any, env string) {
	parts := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	m := root
	if len(parts) == 2 {
		switch sub := root[parts[0]].(type) {
		case map[string]any:
			m = sub
		case nil:
			m = map[string]any{}
			root[parts[0]] = m
		default:
			return
		}
	}
	m[parts[len(parts)-1]] = v
	p.origin[ptr] = env
}
