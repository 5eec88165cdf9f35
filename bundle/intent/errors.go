package intent

import (
	"github.com/lbctl/lbctl/bundle/internal/yamlpos"
	"github.com/lbctl/lbctl/bundle/internal/yamltext"
)

// Pos is a position in an intents file. File is the path as shown to the
// operator (the tree directory joined with the file's path in the tree);
// Line and Col are 1-based, zero when unknown.
type Pos = yamlpos.Pos

// Error is one problem in the intents, at a position.
type Error = yamlpos.Error

// Errors are all the problems found in a tree, sorted by file, line,
// column and message, without duplicates. It is what Load and Resolve return
// when anything is wrong.
type Errors = yamlpos.Errors

// errList collects errors; Err() returns them sorted and deduplicated.
type errList = yamlpos.List

// short quotes a value for a message, cut to about 40 characters.
func short(s string) string { return yamltext.Short(s) }
