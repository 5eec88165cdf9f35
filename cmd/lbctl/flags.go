package main

import (
	"github.com/urfave/cli/v2"

	"github.com/lbctl/lbctl/node/config"
)

var (
	configFlag = &cli.StringFlag{Name: "config", Value: config.DefaultPath, Usage: "node configuration `FILE`", EnvVars: []string{"LBCTL_CONFIG"}}
	jsonFlag   = &cli.BoolFlag{Name: "json", Usage: "print JSON"}
)
