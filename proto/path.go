package proto

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// ValidatePath checks a znode path by ZooKeeper's rules (PathUtils.validatePath):
// absolute, no trailing slash (except the root), no empty, "." or ".."
// components, no NUL, and none of the control, surrogate, private-use or
// specials characters that ZooKeeper rejects. Java examines UTF-16 code
// units, so any character outside the Basic Multilingual Plane (a surrogate
// pair in Java) is rejected too.
func ValidatePath(path string) error {
	if len(path) == 0 {
		return errors.New("path length must be > 0")
	}
	if path[0] != '/' {
		return errors.New("path must start with / character")
	}
	if len(path) == 1 {
		return nil
	}
	if path[len(path)-1] == '/' {
		return errors.New("path must not end with / character")
	}
	if !utf8.ValidString(path) {
		return errors.New("path is not valid UTF-8")
	}
	runes := []rune(path)
	for i := 1; i < len(runes); i++ {
		c, last := runes[i], runes[i-1]
		atEnd := i+1 == len(runes) || runes[i+1] == '/'
		switch {
		case c == 0:
			return fmt.Errorf("null character not allowed @%d", i)
		case c == '/' && last == '/':
			return fmt.Errorf("empty node name specified @%d", i)
		case c == '.' && last == '.':
			if i >= 2 && runes[i-2] == '/' && atEnd {
				return fmt.Errorf("relative paths not allowed @%d", i)
			}
		case c == '.':
			if last == '/' && atEnd {
				return fmt.Errorf("relative paths not allowed @%d", i)
			}
		case c > 0 && c <= 0x1f, c >= 0x7f && c <= 0x9f,
			c >= 0xd800 && c <= 0xf8ff, c >= 0xfff0:
			return fmt.Errorf("invalid character @%d", i)
		}
	}
	return nil
}
