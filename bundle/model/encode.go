package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// The resolved model of a large site is tens of megabytes of JSON, and
// encoding/json re-indents its whole output in one growing buffer. Encode
// instead encodes the big lists element by element, in parallel chunks, with
// the indentation each element has inside the site, and splices them into
// the encoding of the rest of the site: the bytes are exactly those of one
// json.Encoder with SetIndent("", "  ") and SetEscapeHTML(false) over the
// whole site.

// listPrefix is the indentation of an element of a list that is a field
// of the top-level object.
const listPrefix = "    "

// chunk is how many elements one part of a list holds: parts are small
// enough to be spread over the workers and never to need large growing
// buffers.
const chunk = 128

// newEncoder returns an encoder writing canonical JSON to buf, every line
// after the first starting with prefix.
func newEncoder(buf *bytes.Buffer, prefix string) *json.Encoder {
	enc := json.NewEncoder(buf)
	enc.SetIndent(prefix, "  ")
	enc.SetEscapeHTML(false)
	return enc
}

// encodeList returns the encoding of xs as a field of the top-level object
// (null, [] or the indented elements), in parts to be concatenated.
func encodeList[T any](xs []T) ([][]byte, error) {
	switch {
	case xs == nil:
		return [][]byte{[]byte("null")}, nil
	case len(xs) == 0:
		return [][]byte{[]byte("[]")}, nil
	}
	parts := make([][]byte, (len(xs)+chunk-1)/chunk)
	errs := make([]error, len(parts))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(parts)) {
		wg.Go(func() {
			size := 0 // of the worker's last part, to size the next one
			for {
				p := int(next.Add(1) - 1)
				if p >= len(parts) {
					return
				}
				var buf bytes.Buffer
				buf.Grow(size + size/8)
				enc := newEncoder(&buf, listPrefix)
				lo, hi := p*chunk, min((p+1)*chunk, len(xs))
				for i := lo; i < hi; i++ {
					if i == 0 {
						buf.WriteString("[\n" + listPrefix)
					} else {
						buf.WriteString(",\n" + listPrefix)
					}
					if err := enc.Encode(&xs[i]); err != nil {
						errs[p] = err
						return
					}
					buf.Truncate(buf.Len() - 1) // the encoder's newline
				}
				if hi == len(xs) {
					buf.WriteString("\n  ]")
				}
				parts[p] = buf.Bytes()
				size = buf.Len()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return parts, nil
}

// splice replaces the value null of the field name of the top-level object
// in b with the concatenated parts. (A string value cannot hold the line
// break the pattern starts with.)
func splice(b []byte, name string, parts [][]byte) ([]byte, error) {
	field := []byte("\n  \"" + name + "\": ")
	i := bytes.Index(b, append(field, "null"...))
	if i < 0 {
		return nil, fmt.Errorf("no field %s", name)
	}
	i += len(field)
	n := len(b) - len("null")
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	out = append(out, b[:i]...)
	for _, p := range parts {
		out = append(out, p...)
	}
	return append(out, b[i+len("null"):]...), nil
}
