package agent_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestIntegrationBackendDown: the only server of a VIP's backend stops
// accepting; HAProxy's own check (every 100 ms, fall 1) marks it DOWN and
// the agent withdraws the VIP for its backend, then announces it again
// once the server is back. With HAProxy's state events (as rendered) the
// agent reads show stat when HAProxy logs the change; without them (a
// release rendered before) it finds it at its next per-interval read. The
// time from closing the server to the route gone at the route reflector is
// logged for both (a benchmark figure, not asserted).
func TestIntegrationBackendDown(t *testing.T) {
	needTestbed(t)
	trials := 3
	if os.Getenv(benchEnv) != "" {
		trials = 10
	}
	for _, c := range []struct {
		name     string
		noEvents bool
	}{{"state events", false}, {"show stat every interval", true}} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			tb := newTestbed(t, nil)
			var ln net.Listener
			listen := func(addr string) {
				t.Helper()
				if err := tb.lb.Do(func() (err error) {
					ln, err = net.Listen("tcp", addr)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Connection", "close")
					fmt.Fprintln(w, "ok")
				}))
			}
			listen("127.0.0.1:0")
			server := ln.Addr().String()
			vips, store := newSiteOn(t, tb, 1, siteOptions{server: server, check: " check inter 100ms fall 1 rise 1", noEvents: c.noEvents})
			a := startAgent(t, tb, store.Root, agentOptions{})
			p := hostPrefixes(vips[0].vip)
			tb.waitRR(t, p, p, 15*time.Second)
			var gone []time.Duration
			for range trials {
				time.Sleep(time.Duration(float64(agentInterval) * 0.37)) // another phase each trial
				ln.Close()
				start := time.Now()
				gone = append(gone, tb.waitGone4(t, p[0], start, time.Millisecond, 10*time.Second))
				st := vipStatus(t, a.status(t), vips[0].vip.Name)
				if !slices.Contains(st.Reasons, "backend be: 0 of at least 1 servers up") {
					t.Errorf("withdrawn for %q, want the backend without servers", st.Reasons)
				}
				listen(server)
				tb.waitRR(t, p, p, 15*time.Second)
			}
			// The cause, from the agent's log: HAProxy's event (a read of
			// show stat at once), or the evaluations without events.
			if got := logHas(a.proc.Output(), `msg="backend down, withdrawing"`, "vip="+vips[0].vip.Name); got == c.noEvents {
				t.Errorf("withdrawn on a state event: %v, want %v", got, !c.noEvents)
			}
			t.Logf("%s: backend server closed -> route gone at RR (HAProxy check inter 100 ms fall 1, agent fall %d, fast interval %v): %s",
				c.name, agentFall, agentFastInterval, fmtLatencies(gone))
		})
	}
}
