// Package yamlpos says where a problem in a YAML file is and what it is:
// the file:line:col position, one problem at a position, the list of every
// problem found (reported all at once, joined), the position of a go-yaml
// token or syntax error, and the "did you mean" suggestion for a misspelt
// name. It is shared by the intents loader and the inventory parser, so
// both report problems the same way.
//
// It reads nothing and knows no file format: the checks of a file's raw
// text are bundle/internal/yamltext's, the meaning of a key the loaders'.
package yamlpos
