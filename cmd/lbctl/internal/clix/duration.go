package clix

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// ParseDuration parses a Go duration ("90s", "1h30m") that may start with
// a number of days ("7d", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(t, 'd'); i >= 0 {
		n, err := strconv.ParseUint(t[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("duration %q: want a number of days (7d), a Go duration (90s, 15m, 12h) or both (1d12h)", s)
		}
		days, t = time.Duration(n)*24*time.Hour, t[i+1:]
		if t == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a Go duration (90s, 15m, 12h), a number of days (7d) or both (1d12h)", s)
	}
	if days > 0 && d < 0 {
		return 0, fmt.Errorf("duration %q: days and a negative duration", s)
	}
	return days + d, nil
}

// durationValue is a flag.Value of ParseDuration. Its String is Go's, so
// that cli.Context.Duration reads it.
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return time.Duration(*d).String() }

// Get is the time.Duration (flag.Getter).
func (d *durationValue) Get() any { return time.Duration(*d) }

// DurationFlag is cli.DurationFlag with days: --expires 30d, --wait 1d12h.
// Read it with cli.Context.Duration.
type DurationFlag struct {
	Name    string
	Aliases []string
	Usage   string
	Value   time.Duration
	// DefaultText is shown in help instead of the value; with neither, no
	// default is shown.
	DefaultText string
	EnvVars     []string

	hasBeenSet bool
}

func (f *DurationFlag) String() string   { return cli.FlagStringer(f) }
func (f *DurationFlag) Names() []string  { return append([]string{f.Name}, f.Aliases...) }
func (f *DurationFlag) IsSet() bool      { return f.hasBeenSet }
func (f *DurationFlag) TakesValue() bool { return true }
func (f *DurationFlag) GetUsage() string { return f.Usage }
func (f *DurationFlag) GetValue() string { return f.Value.String() }
func (f *DurationFlag) GetEnvVars() []string {
	return f.EnvVars
}
func (f *DurationFlag) IsVisible() bool     { return true }
func (f *DurationFlag) GetCategory() string { return "" }

// GetDefaultText is DefaultText, or the value when it is not zero.
func (f *DurationFlag) GetDefaultText() string {
	if f.DefaultText != "" || f.Value == 0 {
		return f.DefaultText
	}
	return f.Value.String()
}

// Apply registers the flag's names, all sharing one value, starting from
// the first set environment variable or Value.
func (f *DurationFlag) Apply(set *flag.FlagSet) error {
	v := durationValue(f.Value)
	for _, e := range f.EnvVars {
		if s, ok := os.LookupEnv(e); ok && s != "" {
			if err := v.Set(s); err != nil {
				return &UsageError{Msg: fmt.Sprintf("$%s: %v", e, err)}
			}
			f.hasBeenSet = true
			break
		}
	}
	for _, n := range f.Names() {
		set.Var(&v, n, f.Usage)
	}
	return nil
}
