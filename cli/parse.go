package cli

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// argsPattern splits a command line as zkCli does (MyCommandOptions): a
// word is either unquoted (up to the next blank) or wholly quoted with '
// or ", which lets data hold blanks: create /a "hello world".
var argsPattern = regexp.MustCompile(`\s*([^"'\s]\S*|"[^"]*"|'[^']*')\s*`)

// SplitLine breaks a command line into words, stripping one level of
// surrounding quotes from a quoted word. A quote without its partner is
// skipped, as zkCli's pattern skips it.
func SplitLine(line string) []string {
	var out []string
	for _, m := range argsPattern.FindAllStringSubmatch(line, -1) {
		v := m[1]
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out = append(out, v)
	}
	return out
}

// optSpec describes a command's options: the option name and whether it
// takes a value. Names are single letters except reconfig's words.
type optSpec map[string]bool

// parsed is a command line after option parsing: args holds the command
// name and the non-option words in order; opts the options given (the
// value, or "" for a flag).
type parsed struct {
	args []string
	opts map[string]string
}

func (p *parsed) has(o string) bool { _, ok := p.opts[o]; return ok }

// parseError is a malformed command line (exit code 2).
type parseError struct{ msg string }

func (e *parseError) Error() string { return e.msg }

// parseOptions parses words (words[0] is the command) the way Apache
// commons-cli's DefaultParser does for zkCli: options may come anywhere,
// "--" ends them, "-v1" attaches a value, "-se" combines flags, a value
// may be a negative number, and any other word starting with "-" is an
// unrecognised option.
func parseOptions(spec optSpec, words []string) (*parsed, error) {
	p := &parsed{opts: map[string]string{}}
	pendingOpt := ""
	skip := false
	for _, w := range words {
		if pendingOpt != "" {
			if !strings.HasPrefix(w, "-") || isNegativeNumber(w) || w == "-" {
				p.opts[pendingOpt] = w
				pendingOpt = ""
				continue
			}
			return nil, &parseError{"Missing argument for option: " + pendingOpt}
		}
		if skip || len(w) < 2 || w[0] != '-' {
			p.args = append(p.args, w)
			continue
		}
		if w == "--" {
			skip = true
			continue
		}
		name := strings.TrimLeft(w, "-")
		if takes, ok := spec[name]; ok {
			if takes {
				pendingOpt = name
			} else {
				p.opts[name] = ""
			}
			continue
		}
		if takes, ok := spec[name[:1]]; ok && takes {
			p.opts[name[:1]] = name[1:]
			continue
		}
		// Combined flags, e.g. -es; a value-taking option takes the rest.
		ok := true
		for i := 0; i < len(name); i++ {
			takes, known := spec[name[i:i+1]]
			if !known {
				ok = false
				break
			}
			if takes {
				if i+1 < len(name) {
					p.opts[name[i:i+1]] = name[i+1:]
				} else {
					pendingOpt = name[i : i+1]
				}
				break
			}
			p.opts[name[i:i+1]] = ""
		}
		if !ok {
			return nil, &parseError{"Unrecognized option: " + w}
		}
	}
	if pendingOpt != "" {
		return nil, &parseError{"Missing argument for option: " + pendingOpt}
	}
	return p, nil
}

func isNegativeNumber(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// validatePath checks a path by ZooKeeper's client rules
// (PathUtils.validatePath) and words the failure as the Java client does.
func validatePath(path string) error {
	if len(path) == 0 {
		return &parseError{"Path length must be > 0"}
	}
	if path[0] != '/' {
		return &parseError{"Path must start with / character"}
	}
	if len(path) == 1 {
		return nil
	}
	if path[len(path)-1] == '/' {
		return &parseError{"Path must not end with / character"}
	}
	// Java walks UTF-16 code units; a rune outside the BMP is a surrogate
	// pair there, which it rejects as an invalid character.
	var units []rune
	for _, r := range path {
		if r > 0xffff {
			units = append(units, 0xd800, 0xdc00)
		} else {
			units = append(units, r)
		}
	}
	reason := ""
	for i := 1; i < len(units) && reason == ""; i++ {
		c, last := units[i], units[i-1]
		atEnd := i+1 == len(units) || units[i+1] == '/'
		switch {
		case c == 0:
			reason = fmt.Sprintf("null character not allowed @%d", i)
		case c == '/' && last == '/':
			reason = fmt.Sprintf("empty node name specified @%d", i)
		case c == '.' && last == '.':
			if i >= 2 && units[i-2] == '/' && atEnd {
				reason = fmt.Sprintf("relative paths not allowed @%d", i)
			}
		case c == '.':
			if last == '/' && atEnd {
				reason = fmt.Sprintf("relative paths not allowed @%d", i)
			}
		case c > 0 && c <= 0x1f, c >= 0x7f && c <= 0x9f, c >= 0xd800 && c <= 0xf8ff, c >= 0xfff0 && c <= 0xffff:
			reason = fmt.Sprintf("invalid character @%d", i)
		}
	}
	if reason != "" {
		return &parseError{fmt.Sprintf("Invalid path string %q caused by %s", path, reason)}
	}
	return nil
}

// CommandNames lists the shell's commands, sorted, for completion and help.
func CommandNames() []string {
	var out []string
	for name := range commandTable() {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
