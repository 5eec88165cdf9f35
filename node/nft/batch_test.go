package nft

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestApplyIsOneBatch records what Apply writes to the netlink socket
// (no kernel needed): a single sendmsg holding one batch, BEGIN ... END,
// that deletes and recreates the table and fills it.
func TestApplyIsOneBatch(t *testing.T) {
	var sends [][]netlink.Message
	k := &Kernel{testDial: func(req []netlink.Message) ([]netlink.Message, error) {
		if req != nil {
			sends = append(sends, req)
			return nil, nil
		}
		// Each read returns one successful ack.
		ack := make([]byte, 4+16)
		return []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: ack}}, nil
	}}
	if err := k.Apply(manyPairs(10000)); err != nil {
		t.Fatal(err)
	}
	if len(sends) != 1 {
		t.Fatalf("Apply made %d sendmsg calls, want 1", len(sends))
	}
	var kinds []string
	for _, m := range sends[0] {
		kinds = append(kinds, msgName(m))
	}
	got := strings.Join(kinds, " ")
	want := "BEGIN NEWTABLE DELTABLE NEWTABLE " +
		"NEWSET NEWSETELEM*3 NEWSET NEWSETELEM*3 NEWSET NEWSETELEM*5 NEWSET NEWSETELEM*5 " +
		"NEWCHAIN*2 NEWRULE*7 END"
	if compress(got) != want {
		t.Fatalf("batch:\n got %s\nwant %s", compress(got), want)
	}
	// Every message of the table names table inet lbctl; none touches
	// another table or family.
	for _, m := range sends[0][1 : len(sends[0])-1] {
		if m.Data[0] != unix.NFPROTO_INET {
			t.Fatalf("%s for family %d", msgName(m), m.Data[0])
		}
		if !strings.Contains(string(m.Data), "lbctl\x00") {
			t.Fatalf("%s without table name lbctl", msgName(m))
		}
	}
}

func msgName(m netlink.Message) string {
	switch uint16(m.Header.Type) {
	case unix.NFNL_MSG_BATCH_BEGIN:
		return "BEGIN"
	case unix.NFNL_MSG_BATCH_END:
		return "END"
	}
	names := map[uint16]string{
		unix.NFT_MSG_NEWTABLE: "NEWTABLE", unix.NFT_MSG_DELTABLE: "DELTABLE", unix.NFT_MSG_NEWSET: "NEWSET",
		unix.NFT_MSG_NEWSETELEM: "NEWSETELEM", unix.NFT_MSG_NEWCHAIN: "NEWCHAIN", unix.NFT_MSG_NEWRULE: "NEWRULE",
	}
	if n, ok := names[uint16(m.Header.Type)&0xff]; ok && uint16(m.Header.Type)>>8 == unix.NFNL_SUBSYS_NFTABLES {
		return n
	}
	return fmt.Sprintf("type %#x", m.Header.Type)
}

// compress writes runs of a word as WORD*n.
func compress(s string) string {
	w := strings.Fields(s)
	var out []string
	for i := 0; i < len(w); {
		j := i
		for j < len(w) && w[j] == w[i] {
			j++
		}
		if n := j - i; n > 1 {
			out = append(out, fmt.Sprintf("%s*%d", w[i], n))
		} else {
			for ; i < j; i++ {
				out = append(out, w[i])
			}
		}
		i = j
	}
	return strings.Join(out, " ")
}
