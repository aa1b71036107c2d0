package recipes

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/paddockhq/paddock/client"
)

// Codec turns a configuration value into node data and back.
type Codec[T any] struct {
	Encode func(T) ([]byte, error)
	Decode func([]byte) (T, error)
}

// JSON is the Codec that stores values as JSON.
func JSON[T any]() Codec[T] {
	return Codec[T]{
		Encode: func(v T) ([]byte, error) { return json.Marshal(v) },
		Decode: func(b []byte) (T, error) {
			var v T
			err := json.Unmarshal(b, &v)
			return v, err
		},
	}
}

// String is the Codec that stores a string as it is.
func String() Codec[string] {
	return Codec[string]{
		Encode: func(s string) ([]byte, error) { return []byte(s), nil },
		Decode: func(b []byte) (string, error) { return string(b), nil },
	}
}

// Config is a typed configuration value kept in one node (the
// "configuration management" use of ZooKeeper): writers Set it, and every
// process Watches it and reacts to each change.
type Config[T any] struct {
	c     *client.Client
	path  string
	codec Codec[T]
}

// NewConfig returns the configuration value stored at path with codec.
func NewConfig[T any](c *client.Client, path string, codec Codec[T]) *Config[T] {
	return &Config[T]{c: c, path: path, codec: codec}
}

// Value is one version of a configuration value.
type Value[T any] struct {
	// Value is the decoded value (the zero value when !Exists or Err).
	Value T
	// Exists is false when the node does not exist.
	Exists bool
	// Version is the node's data version, for conditional updates.
	Version int32
	// Err is set when the node's data does not decode.
	Err error
}

// Get reads the current value.
func (cf *Config[T]) Get(ctx context.Context) (Value[T], error) {
	v, _, err := cf.read(ctx, false)
	return v, err
}

func (cf *Config[T]) read(ctx context.Context, watch bool) (Value[T], <-chan client.Event, error) {
	var data []byte
	var st *client.Stat
	var ch <-chan client.Event
	err := retry(ctx, cf.c, func() (err error) {
		if !watch {
			data, st, err = cf.c.Get(ctx, cf.path)
			return
		}
		// ExistsW watches a missing node for its creation and an existing
		// one for changes; Get after it sees at least that version.
		var ok bool
		ok, _, ch, err = cf.c.ExistsW(ctx, cf.path)
		if err != nil || !ok {
			return err
		}
		data, st, err = cf.c.Get(ctx, cf.path)
		return
	})
	if errors.Is(err, client.ErrNoNode) || (err == nil && st == nil) {
		return Value[T]{}, ch, nil
	}
	if err != nil {
		return Value[T]{}, nil, err
	}
	v, derr := cf.codec.Decode(data)
	return Value[T]{Value: v, Exists: true, Version: st.Version, Err: derr}, ch, nil
}

// Set writes the value if the node's version is version (client.AnyVersion
// for an unconditional write, which also creates the node and its parents
// if needed, and is retried across connection losses). A conditional
// write interrupted by a connection loss returns client.ErrConnectionLoss:
// it may have been applied.
func (cf *Config[T]) Set(ctx context.Context, v T, version int32) error {
	data, err := cf.codec.Encode(v)
	if err != nil {
		return err
	}
	for {
		var err error
		if version == client.AnyVersion {
			// An unconditional write can be repeated safely.
			err = retry(ctx, cf.c, func() error { _, err := cf.c.Set(ctx, cf.path, data, version); return err })
		} else {
			_, err = cf.c.Set(ctx, cf.path, data, version)
		}
		if !errors.Is(err, client.ErrNoNode) || version != client.AnyVersion {
			return err
		}
		if err := retry(ctx, cf.c, func() error { return cf.c.EnsurePath(ctx, parent(cf.path), nil) }); err != nil {
			return err
		}
		_, _, err = cf.c.Create(ctx, cf.path, data, client.ModePersistent, nil)
		if !errors.Is(err, client.ErrNodeExists) {
			return err
		}
	}
}

// Watch follows the value: the channel receives the current value at once
// and then every new version (a burst of writes may be seen as its last
// value only, as with any ZooKeeper watch). It is closed when ctx ends or
// the session ends.
func (cf *Config[T]) Watch(ctx context.Context) <-chan Value[T] {
	out := make(chan Value[T], 1)
	go func() {
		defer close(out)
		for {
			v, ch, err := cf.read(ctx, true)
			if err != nil {
				return
			}
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
			select {
			case ev := <-ch:
				if ev.Type == client.EventNotWatching {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
