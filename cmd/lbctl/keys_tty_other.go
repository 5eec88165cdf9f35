//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd

package main

import (
	"errors"
	"os"

	"github.com/lbctl/lbctl/bundle/sign"
)

func disableEcho(*os.File) (func(), error) {
	return nil, errors.New("cannot turn off echo on this system: set " + sign.PassphraseEnv)
}
