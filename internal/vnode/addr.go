package vnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// addrBook hands out pod addresses from one block of loopback addresses,
// 127.<block>.0.0/16 (all of 127/8 is on lo, so nothing needs
// configuring): 127.<block>.0.1 is the node, pods get .0.2 upwards. An
// address is kept for the pod's namespace/name for the node's lifetime,
// so that a StatefulSet pod that is deleted and made again comes back on
// the same address, as it does with its DNS name. The book is saved in
// the state directory.
type addrBook struct {
	mu    sync.Mutex
	block int
	file  string
	Addrs map[string]string `json:"addrs"` // namespace/name → IP
	Next  int               `json:"next"`
	lock  *os.File
}

// lockBlock takes the first free block from 10..250 (or the one given),
// holding an flock on a file in the machine's temporary directory so
// that two nodes on one machine never share addresses.
func lockBlock(want int) (int, *os.File, error) {
	dir := filepath.Join(os.TempDir(), "paddock-vnode-blocks")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, nil, err
	}
	lo, hi := 10, 250
	if want != 0 {
		lo, hi = want, want
	}
	for b := lo; b <= hi; b++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%d.lock", b)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return 0, nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return b, f, nil
	}
	return 0, nil, errors.New("no free 127.x block for pod addresses")
}

func openAddrBook(stateDir string, block int) (*addrBook, error) {
	b, lock, err := lockBlock(block)
	if err != nil {
		return nil, err
	}
	ab := &addrBook{block: b, file: filepath.Join(stateDir, "addresses.json"), Addrs: map[string]string{}, Next: 2, lock: lock}
	if data, err := os.ReadFile(ab.file); err == nil {
		var saved addrBook
		if json.Unmarshal(data, &saved) == nil && saved.Addrs != nil {
			ab.Addrs, ab.Next = saved.Addrs, saved.Next
		}
	}
	return ab, nil
}

func (ab *addrBook) nodeIP() string { return fmt.Sprintf("127.%d.0.1", ab.block) }

// get returns the address of namespace/name, allocating one if needed.
func (ab *addrBook) get(key string) (string, error) {
	ab.mu.Lock()
	defer ab.mu.Unlock()
	if ip, ok := ab.Addrs[key]; ok {
		return ip, nil
	}
	if ab.Next >= 65535 {
		return "", errors.New("pod addresses exhausted")
	}
	ip := net.IPv4(127, byte(ab.block), byte(ab.Next>>8), byte(ab.Next&0xff)).String()
	ab.Next++
	ab.Addrs[key] = ip
	data, _ := json.Marshal(ab)
	tmp := ab.file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err == nil {
		os.Rename(tmp, ab.file)
	}
	return ip, nil
}

func (ab *addrBook) close() {
	if ab.lock != nil {
		ab.lock.Close()
	}
}
