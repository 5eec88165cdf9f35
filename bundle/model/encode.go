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
			var compact bytes.Buffer
			enc := json.NewEncoder(&compact)
			enc.SetEscapeHTML(false)
			size := 0 // of the worker's last part, to size the next one
			for {
				p := int(next.Add(1) - 1)
				if p >= len(parts) {
					return
				}
				b := make([]byte, 0, size+size/8)
				lo, hi := p*chunk, min((p+1)*chunk, len(xs))
				for i := lo; i < hi; i++ {
					if i == 0 {
						b = append(b, "[\n"+listPrefix...)
					} else {
						b = append(b, ",\n"+listPrefix...)
					}
					compact.Reset()
					if err := enc.Encode(&xs[i]); err != nil {
						errs[p] = err
						return
					}
					b = appendIndent(b, bytes.TrimSuffix(compact.Bytes(), []byte("\n")), listPrefix)
				}
				if hi == len(xs) {
					b = append(b, "\n  ]"...)
				}
				parts[p] = b
				size = len(b)
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

// appendIndent appends src, compact JSON as encoding/json writes it (no
// white space outside strings), to dst indented as json.Indent(dst, src,
// prefix, "  ") would: a line break before each member or element and
// before the closing bracket, empty objects and lists kept as {} and [],
// ": " between a key and its value. It only tracks strings, which the
// general scanner of json.Indent does not need to be fast at.
func appendIndent(dst, src []byte, prefix string) []byte {
	depth := 0
	open := false // after { or [, before the first element
	newline := func() {
		dst = append(dst, '\n')
		dst = append(dst, prefix...)
		for range depth {
			dst = append(dst, "  "...)
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		if open && c != '}' && c != ']' {
			open = false
			depth++
			newline()
		}
		switch c {
		case '"':
			// Copy the string through its closing quote.
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			dst = append(dst, src[i:min(j+1, len(src))]...)
			i = j
		case '{', '[':
			open = true
			dst = append(dst, c)
		case ',':
			dst = append(dst, c)
			newline()
		case ':':
			dst = append(dst, ':', ' ')
		case '}', ']':
			if open {
				open = false
			} else {
				depth--
				newline()
			}
			dst = append(dst, c)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
