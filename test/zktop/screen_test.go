package zktop

import (
	"strconv"
	"strings"
)

// screen is a minimal terminal emulator: enough of xterm's control
// sequences (the ones ncurses emits for zktop with TERM=xterm) to turn a
// curses program's output into the text a person would see.
type screen struct {
	rows, cols int
	cells      [][]rune
	y, x       int
	last       rune // last printed character, for REP
}

func newScreen(rows, cols int) *screen {
	s := &screen{rows: rows, cols: cols}
	s.cells = make([][]rune, rows)
	for i := range s.cells {
		s.cells[i] = blank(cols)
	}
	return s
}

func blank(n int) []rune {
	r := make([]rune, n)
	for i := range r {
		r[i] = ' '
	}
	return r
}

func (s *screen) clamp() {
	s.y = min(max(s.y, 0), s.rows-1)
	s.x = min(max(s.x, 0), s.cols-1)
}

func (s *screen) put(r rune) {
	if s.x >= s.cols {
		s.x = 0
		s.lineFeed()
	}
	s.cells[s.y][s.x] = r
	s.x++
	s.last = r
}

func (s *screen) lineFeed() {
	if s.y == s.rows-1 {
		copy(s.cells, s.cells[1:])
		s.cells[s.rows-1] = blank(s.cols)
		return
	}
	s.y++
}

// Write feeds terminal output to the screen.
func (s *screen) Write(p []byte) {
	text := []rune(string(p))
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == 0x1b:
			i = s.escape(text, i+1)
		case c == '\r':
			s.x = 0
		case c == '\n':
			s.lineFeed()
		case c == '\b':
			if s.x > 0 {
				s.x--
			}
		case c == '\t':
			s.x = min((s.x/8+1)*8, s.cols-1)
		case c < 0x20 || c == 0x7f:
			// other controls (BEL, SI, SO): nothing to draw
		default:
			s.put(c)
		}
	}
}

// escape interprets the sequence after ESC at text[i] and returns the
// index of its last character.
func (s *screen) escape(text []rune, i int) int {
	if i >= len(text) {
		return i
	}
	switch text[i] {
	case '[':
		return s.csi(text, i+1)
	case '(', ')', '*', '+', '#': // charset designation: one more character
		return i + 1
	case 'M': // reverse index
		if s.y > 0 {
			s.y--
		}
	case ']': // OSC ... BEL or ST
		for j := i + 1; j < len(text); j++ {
			if text[j] == 0x07 {
				return j
			}
			if text[j] == 0x1b && j+1 < len(text) && text[j+1] == '\\' {
				return j + 1
			}
		}
		return len(text)
	}
	return i // ESC =, ESC >, ESC 7, ESC 8, ...: no effect on the text
}

func (s *screen) csi(text []rune, i int) int {
	j := i
	for j < len(text) && (text[j] < 0x40 || text[j] > 0x7e) {
		j++
	}
	if j >= len(text) {
		return len(text)
	}
	params := string(text[i:j])
	if strings.HasPrefix(params, "?") || strings.HasPrefix(params, ">") {
		return j // private modes (alternate screen, cursor keys, ...)
	}
	var n []int
	for _, f := range strings.Split(params, ";") {
		v, _ := strconv.Atoi(f)
		n = append(n, v)
	}
	arg := func(k, def int) int {
		if k < len(n) && n[k] != 0 {
			return n[k]
		}
		return def
	}
	switch text[j] {
	case 'H', 'f':
		s.y, s.x = arg(0, 1)-1, arg(1, 1)-1
	case 'G', '`':
		s.x = arg(0, 1) - 1
	case 'd':
		s.y = arg(0, 1) - 1
	case 'A':
		s.y -= arg(0, 1)
	case 'B':
		s.y += arg(0, 1)
	case 'C':
		s.x += arg(0, 1)
	case 'D':
		s.x -= arg(0, 1)
	case 'K':
		row := s.cells[s.y]
		from, to := s.x, s.cols
		switch arg(0, 0) {
		case 1:
			from, to = 0, s.x+1
		case 2:
			from = 0
		}
		for k := from; k < min(to, s.cols); k++ {
			row[k] = ' '
		}
	case 'J':
		switch arg(0, 0) {
		case 0:
			for k := s.x; k < s.cols; k++ {
				s.cells[s.y][k] = ' '
			}
			for r := s.y + 1; r < s.rows; r++ {
				s.cells[r] = blank(s.cols)
			}
		case 2, 3:
			for r := range s.cells {
				s.cells[r] = blank(s.cols)
			}
		}
	case 'X':
		for k := s.x; k < min(s.x+arg(0, 1), s.cols); k++ {
			s.cells[s.y][k] = ' '
		}
	case 'P':
		row := s.cells[s.y]
		k := min(arg(0, 1), s.cols-s.x)
		copy(row[s.x:], row[s.x+k:])
		for m := s.cols - k; m < s.cols; m++ {
			row[m] = ' '
		}
	case '@':
		row := s.cells[s.y]
		k := min(arg(0, 1), s.cols-s.x)
		copy(row[s.x+k:], row[s.x:s.cols-k])
		for m := s.x; m < s.x+k; m++ {
			row[m] = ' '
		}
	case 'b':
		for k := 0; k < arg(0, 1); k++ {
			s.put(s.last)
		}
	}
	s.clamp()
	return j
}

// Lines returns the screen's rows without trailing blanks.
func (s *screen) Lines() []string {
	out := make([]string, s.rows)
	for i, r := range s.cells {
		out[i] = strings.TrimRight(string(r), " ")
	}
	return out
}

// String is the screen as text, one row a line.
func (s *screen) String() string { return strings.Join(s.Lines(), "\n") }
