//go:build !linux

package vnode

import "errors"

func runShim(*ShimSpec) error { return errors.New("vnode shim: Linux only (mount namespaces)") }
