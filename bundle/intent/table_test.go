package intent

import (
	"os"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestInferenceTable checks the inference table of docs/intents.md
// against the code: every row is a rule the code has (a step of
// inferenceRules named after it, a software row, or a vipRules entry), and
// every rule of the code has a row. A step's function is named after its
// rules (inferI1I2Redirect for "I1 I2").
func TestInferenceTable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/intents.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(doc)
	start := strings.Index(section, "\n## Inference\n")
	if start < 0 {
		t.Fatal("docs/intents.md has no section ## Inference")
	}
	section = section[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	row := regexp.MustCompile(`(?m)^\| (I[0-9]+) \|`)
	var docIDs []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		docIDs = append(docIDs, m[1])
	}
	if len(docIDs) == 0 {
		t.Fatal("the inference table in docs/intents.md has no rows")
	}

	code := map[string]string{} // rule id -> where the code applies it
	claim := func(id, where string) {
		if prev, ok := code[id]; ok {
			t.Errorf("rule %s is applied twice: by %s and by %s", id, prev, where)
		}
		code[id] = where
	}
	for _, r := range inferenceRules {
		name := runtime.FuncForPC(reflect.ValueOf(r.apply).Pointer()).Name()
		name = name[strings.LastIndex(name, ".")+1:]
		ids := strings.Fields(r.ids)
		if want := "infer" + strings.Join(ids, ""); !strings.HasPrefix(name, want) {
			t.Errorf("step %s of inferenceRules (rules %q): its name should start with %s", name, r.ids, want)
		}
		for _, id := range ids {
			claim(id, name)
		}
	}
	for _, r := range vipRules {
		claim(r.id, r.where)
	}
	for name, sw := range softwares {
		if sw.rule == "" {
			t.Errorf("software %s names no rule", name)
			continue
		}
		if _, ok := code[sw.rule]; !ok {
			code[sw.rule] = "software " + name
		}
	}

	for _, id := range docIDs {
		if _, ok := code[id]; !ok {
			t.Errorf("docs/intents.md: rule %s is in the inference table but not in the code (inferenceRules, softwares or vipRules)", id)
		}
	}
	for id, where := range code {
		if !slices.Contains(docIDs, id) {
			t.Errorf("rule %s (%s) has no row in the inference table of docs/intents.md", id, where)
		}
	}
	if s := slices.Clone(docIDs); len(slices.Compact(slices.Sorted(slices.Values(s)))) != len(docIDs) {
		t.Errorf("docs/intents.md: the inference table repeats a rule: %v", docIDs)
	}
}
