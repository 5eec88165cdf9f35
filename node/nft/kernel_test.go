package nft

import (
	"testing"

	"github.com/lbctl/lbctl/bundle/model"
	"github.com/lbctl/lbctl/test/netnstest"
)

// fixture exercises every kind of element and rule.
func fixture() model.Firewall {
	return model.Firewall{
		VIPs4: []string{"192.0.2.10", "192.0.2.11"},
		VIPs6: []string{"2001:db8::10"},
		Accept4: []model.AddrPort{
			{Addr: "192.0.2.10", Port: 443}, {Addr: "192.0.2.10", Port: 80}, {Addr: "192.0.2.11", Port: 443},
		},
		Accept6:     []model.AddrPort{{Addr: "2001:db8::10", Port: 443}},
		Transparent: true,
		Intercepts: []model.Intercept{
			{Prefix: "10.0.0.0/8", Port: 80, ToAddr: "192.0.2.10", ToPort: 8080},
			{Prefix: "172.16.0.0/12", Port: 443, ToPort: 8443},
			{Prefix: "2001:db8:1::/48", Port: 80, ToAddr: "2001:db8::10", ToPort: 8080},
		},
	}
}

// kernelIn returns a Kernel working in a fresh namespace.
func kernelIn(t *testing.T, name string) (*Kernel, *netnstest.NS) {
	t.Helper()
	ns := netnstest.New(t, "nft-"+name)
	k, err := New(WithNetNS(ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return k, ns
}

func mustRead(t *testing.T, k *Kernel) model.Firewall {
	t.Helper()
	fw, ok, err := k.Read()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("table inet lbctl does not exist")
	}
	return fw
}

func TestKernelApplyRead(t *testing.T) {
	k, ns := kernelIn(t, "apply")
	if _, ok, err := k.Read(); err != nil || ok {
		t.Fatalf("fresh namespace: Read = exists %v, %v", ok, err)
	}
	want := fixture()
	if err := k.Apply(want); err != nil {
		t.Fatal(err)
	}
	got := mustRead(t, k)
	if d := Diff(want, got); len(d) > 0 {
		t.Fatalf("diff after apply:\n%s\n%s", d, ns.Exec(t, "nft", "list", "ruleset"))
	}
	t.Log(ns.Exec(t, "nft", "list", "ruleset"))
}
