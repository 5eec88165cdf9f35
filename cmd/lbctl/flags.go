package main

import (
	"encoding/json"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/config"
)

var (
	configFlag = &cli.StringFlag{Name: "config", Value: config.DefaultPath, Usage: "node configuration `FILE`", EnvVars: []string{"LBCTL_CONFIG"}}
	jsonFlag   = &cli.BoolFlag{Name: "json", Usage: "print JSON"}
)

// writeJSON prints v as indented JSON, the form of every --json output.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
