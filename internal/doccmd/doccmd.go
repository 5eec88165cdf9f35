// Package doccmd reads the shell commands of a Markdown guide: its fenced
// `sh` blocks, each with the words after `sh` on its opening line (where
// the block runs: docs/deploy.md's `admin`, `ansible`, `node`, `covered
// TEST...`) and its commands, one per line, a line ending in a backslash
// joined with the next, blank and comment lines left out. The tests that
// keep docs/deploy.md true run what it reads. It is pure.
package doccmd

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Block is one fenced sh block.
type Block struct {
	// Line is the line of the opening fence (1-based).
	Line int
	// Tags are the words after "sh" on the opening fence.
	Tags     []string
	Commands []Command
}

// Command is one command of a block.
type Command struct {
	Line int
	Text string
}

// Parse returns the sh blocks of a Markdown text in order. A block that is
// not closed is an error.
func Parse(md []byte) ([]Block, error) {
	var blocks []Block
	var cur *Block
	var pending strings.Builder
	pendingLine := 0
	sc := bufio.NewScanner(bytes.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur == nil {
			if rest, ok := strings.CutPrefix(trimmed, "```"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 && f[0] == "sh" {
					cur = &Block{Line: n, Tags: f[1:]}
				}
			}
			continue
		}
		if trimmed == "```" {
			if pending.Len() > 0 {
				return nil, fmt.Errorf("line %d: the block ends after a continued line", n)
			}
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		if pending.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if pending.Len() == 0 {
			pendingLine = n
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			pending.WriteString(strings.TrimSpace(body) + " ")
			continue
		}
		pending.WriteString(trimmed)
		cur.Commands = append(cur.Commands, Command{Line: pendingLine, Text: pending.String()})
		pending.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: the sh block is not closed", cur.Line)
	}
	return blocks, nil
}

// Tagged returns the commands of the blocks whose first tag is tag, in
// order.
func Tagged(blocks []Block, tag string) []Command {
	var out []Command
	for _, b := range blocks {
		if len(b.Tags) > 0 && b.Tags[0] == tag {
			out = append(out, b.Commands...)
		}
	}
	return out
}
