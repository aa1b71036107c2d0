package config

import (
	"strings"
	"testing"
)

// FuzzParse checks that no input makes the parser panic, that every error
// names a line inside the input (or none, for whole-file checks), and that
// key=value settings written by WriteSettings read back unchanged.
func FuzzParse(f *testing.F) {
	f.Add(fullCfg)
	f.Add("tickTime=2000\ndataDir=/d\nclientPort=2181\n")
	f.Add("a=\\u00\n")
	f.Add("a=b\\\n  c\\\\\n#x\n!y\n k : v \r\n")
	f.Add("tickTime=2000\ndataDir=/d\nserver.1=[::1]:1:2:observer;[::1]:3\nserver.2=h:1:2\n")
	f.Fuzz(func(t *testing.T, text string) {
		props, err := ParseProperties(text)
		lines := len(splitLines(text))
		if err != nil {
			le, ok := err.(*LineError)
			if !ok || le.Line < 1 || le.Line > lines {
				t.Fatalf("error %v has no line inside 1..%d", err, lines)
			}
			return
		}
		var settings []Setting
		for _, p := range props {
			if p.Line < 1 || p.Line > lines {
				t.Fatalf("property %+v outside 1..%d", p, lines)
			}
			if p.Key != "" && !strings.ContainsAny(p.Key, "=: \t\f\\\r\n#!") {
				settings = append(settings, Setting{p.Key, p.Value})
			}
		}
		var b strings.Builder
		WriteSettings(&b, settings)
		back, err := ParseProperties(b.String())
		if err != nil || len(back) != len(settings) {
			t.Fatalf("round trip of %q: %v, %d props", b.String(), err, len(back))
		}
		for i := range back {
			if back[i].Key != settings[i].Key || back[i].Value != settings[i].Value {
				t.Fatalf("round trip %q=%q became %q=%q", settings[i].Key, settings[i].Value, back[i].Key, back[i].Value)
			}
		}
		if c, err := Parse(text); err == nil {
			_ = c.Ignored()
			_ = c.ClientAddr()
			_ = c.AdminAddr()
		}
	})
}
