package config

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Property is one key/value pair of a properties file, with the line its
// logical line starts on (1-based).
type Property struct {
	Key, Value string
	Line       int
}

// ParseProperties reads text in the format of java.util.Properties.load,
// the format of zoo.cfg:
//
//   - a line whose first non-blank character is '#' or '!' is a comment;
//     blank lines are skipped;
//   - a line ending in an odd number of backslashes continues on the next
//     line, whose leading blanks are dropped;
//   - the key ends at the first unescaped '=', ':' or blank; blanks, then
//     one '=' or ':', then blanks separate it from the value;
//   - \t \n \r \f and \uXXXX are escapes, and a backslash before any other
//     character stands for that character.
//
// Unlike Java, which reads the bytes as ISO-8859-1, the bytes are kept as
// they are, so UTF-8 paths survive. A malformed \uXXXX escape is an error
// naming its line. Properties are returned in file order; a repeated key
// appears twice (the caller keeps the last, as Properties does).
func ParseProperties(text string) ([]Property, error) {
	var out []Property
	lineNo := 0
	lines := splitLines(text)
	for i := 0; i < len(lines); i++ {
		lineNo = i + 1
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		start := lineNo
		// Join continuation lines.
		var logical strings.Builder
		for {
			if trailingBackslashes(line)%2 == 1 {
				logical.WriteString(line[:len(line)-1])
				i++
				if i >= len(lines) {
					break
				}
				line = strings.TrimLeft(lines[i], " \t\f")
				continue
			}
			logical.WriteString(line)
			break
		}
		key, value, err := splitKeyValue(logical.String())
		if err != nil {
			return nil, &LineError{Line: start, Err: err}
		}
		out = append(out, Property{Key: key, Value: value, Line: start})
	}
	return out, nil
}

// LineError is a problem on one line of a configuration file.
type LineError struct {
	// File is the file's name, when known.
	File string
	// Line is the 1-based line number.
	Line int
	// Key is the key concerned, when known.
	Key string
	// Err is the problem.
	Err error
}

// Error formats the error as file:line: key: problem.
func (e *LineError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	} else {
		b.WriteString("line ")
	}
	fmt.Fprintf(&b, "%d: ", e.Line)
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *LineError) Unwrap() error { return e.Err }

// splitLines splits on \n, \r and \r\n, as LineReader does.
func splitLines(text string) []string {
	var lines []string
	for len(text) > 0 {
		i := strings.IndexAny(text, "\r\n")
		if i < 0 {
			lines = append(lines, text)
			break
		}
		lines = append(lines, text[:i])
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
	return lines
}

func trailingBackslashes(s string) int {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

// splitKeyValue splits a logical line and unescapes both parts.
func splitKeyValue(line string) (string, string, error) {
	keyLen := 0
	valueStart := len(line)
	hasSep := false
	backslash := false
	for keyLen < len(line) {
		c := line[keyLen]
		if (c == '=' || c == ':') && !backslash {
			valueStart = keyLen + 1
			hasSep = true
			break
		} else if isBlank(c) && !backslash {
			valueStart = keyLen + 1
			break
		}
		backslash = c == '\\' && !backslash
		keyLen++
	}
	for valueStart < len(line) {
		c := line[valueStart]
		if !isBlank(c) {
			if !hasSep && (c == '=' || c == ':') {
				hasSep = true
			} else {
				break
			}
		}
		valueStart++
	}
	key, err := unescape(line[:keyLen])
	if err != nil {
		return "", "", err
	}
	value, err := unescape(line[min(valueStart, len(line)):])
	if err != nil {
		return "", "", err
	}
	return key, value, nil
}

// unescape is Properties.loadConvert.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			// A lone trailing backslash (the last line of the file) is
			// dropped, as Java does.
			break
		}
		switch c = s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			r, ok := hex4(s, i+1)
			if !ok {
				return "", fmt.Errorf("malformed \\uxxxx encoding")
			}
			i += 4
			// A character outside the BMP arrives as a surrogate pair.
			if utf16.IsSurrogate(r) && i+6 < len(s)+1 && strings.HasPrefix(s[i+1:], "\\u") {
				if lo, ok := hex4(s, i+3); ok {
					if pr := utf16.DecodeRune(r, lo); pr != utf8.RuneError {
						r = pr
						i += 6
					}
				}
			}
			b.WriteRune(r)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// hex4 decodes the four hex digits at s[i:i+4].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, h := range []byte(s[i : i+4]) {
		var v byte
		switch {
		case h >= '0' && h <= '9':
			v = h - '0'
		case h >= 'a' && h <= 'f':
			v = h - 'a' + 10
		case h >= 'A' && h <= 'F':
			v = h - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}
