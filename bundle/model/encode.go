package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
)

// The resolved model of a large site is tens of megabytes of JSON, and
// encoding/json re-indents its whole output in one growing buffer with a
// general scanner. Encode instead encodes the rest of the site with the big
// lists left null, then each list element by element on GOMAXPROCS workers:
// compact, then indented (appendIndent) as the element is inside the site,
// and splices the list in: the bytes are exactly those of one json.Encoder
// with SetIndent("", "  ") and SetEscapeHTML(false) over the whole site
// (TestEncodeMatchesOneEncoder).

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

// spliceList replaces the value null of the field name of the top-level
// object in b with the encoding of xs ([] or the indented elements; a nil xs
// stays null). Workers encode parts of chunk elements, in parallel, and this
// goroutine appends them in order to the result, handing their buffers back
// to the workers: the list is copied once, into a result sized from the
// first part. (A string value cannot hold the line break the pattern starts
// with, so the pattern finds the field.)
func spliceList[T any](b []byte, name string, xs []T) ([]byte, error) {
	field := []byte("\n  \"" + name + "\": null")
	i := bytes.Index(b, field)
	if i < 0 {
		return nil, fmt.Errorf("no field %s", name)
	}
	i += len(field) - len("null")
	head, tail := b[:i], b[i+len("null"):]
	switch {
	case xs == nil:
		return b, nil
	case len(xs) == 0:
		return slices.Concat(head, []byte("[]"), tail), nil
	}
	n := (len(xs) + chunk - 1) / chunk
	workers := min(runtime.GOMAXPROCS(0), n)
	done := make([]chan []byte, n)
	for p := range done {
		done[p] = make(chan []byte, 1)
	}
	// A worker takes a buffer (nil: it makes one) before it takes the next
	// part, and the buffer comes back once the part is appended: parts in
	// flight are bounded, and the lowest part not appended yet always has
	// a buffer.
	free := make(chan []byte, 2*workers+2)
	for range cap(free) {
		free <- nil
	}
	errs := make([]error, n)
	var next atomic.Int64
	for range workers {
		go encodeParts(xs, n, &next, free, done, errs)
	}
	var out []byte
	for p := range n {
		part := <-done[p]
		if p == 0 {
			out = make([]byte, 0, len(head)+len(part)*n+len(part)*n/8+len(tail))
			out = append(out, head...)
		}
		out = append(out, part...)
		free <- part[:0]
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return append(out, tail...), nil
}

// encodeParts is one worker of spliceList: it takes the next of the n
// parts of xs and a buffer from free, appends the part's elements to the
// buffer, compact then indented, and sends it on done[part], until no part
// is left. An error of a part goes to errs[part].
func encodeParts[T any](xs []T, n int, next *atomic.Int64, free chan []byte, done []chan []byte, errs []error) {
	var compact bytes.Buffer
	enc := json.NewEncoder(&compact)
	enc.SetEscapeHTML(false)
	size := 0 // of the worker's last part, to size a new buffer
	for {
		b := <-free
		p := int(next.Add(1) - 1)
		if p >= n {
			return
		}
		if b == nil {
			b = make([]byte, 0, size+size/8)
		}
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
				break
			}
			b = appendIndent(b, bytes.TrimSuffix(compact.Bytes(), []byte("\n")), listPrefix)
		}
		if hi == len(xs) {
			b = append(b, "\n  ]"...)
		}
		size = len(b)
		done[p] <- b
	}
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
