package nft

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/lbctl/lbctl/bundle/model"
)

// dumpedRule is a rule as the kernel lists it. google/nftables drops the
// expressions it cannot decode (socket and tproxy among them), which would
// hide the rules that matter most here, so the table's rules are dumped and
// decoded by this package; expressions lbctl never programs are kept by
// name in unknown and count as drift.
type dumpedRule struct {
	chain   string
	exprs   []expr.Any
	unknown []string
}

// dumpRules lists the rules of one chain of the table inet lbctl.
func dumpRules(netns int, chain string) ([]dumpedRule, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("dial nfnetlink: %w", err)
	}
	defer c.Close()
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: []byte(model.NFTTable + "\x00")},
		{Type: unix.NFTA_RULE_CHAIN, Data: []byte(chain + "\x00")},
	})
	if err != nil {
		return nil, err
	}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if err != nil {
		return nil, fmt.Errorf("dump rules of chain %s: %w", chain, err)
	}
	var rules []dumpedRule
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		r, table, err := decodeRule(m.Data[4:])
		if err != nil {
			return nil, fmt.Errorf("decode rule of chain %s: %w", chain, err)
		}
		if table == model.NFTTable && r.chain == chain {
			rules = append(rules, r)
		}
	}
	return rules, nil
}

func decodeRule(b []byte) (dumpedRule, string, error) {
	var r dumpedRule
	var table string
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return r, "", err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_RULE_TABLE:
			table = ad.String()
		case unix.NFTA_RULE_CHAIN:
			r.chain = ad.String()
		case unix.NFTA_RULE_EXPRESSIONS:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					nad.Nested(func(ead *netlink.AttributeDecoder) error {
						var name string
						var data []byte
						for ead.Next() {
							switch ead.Type() {
							case unix.NFTA_EXPR_NAME:
								name = ead.String()
							case unix.NFTA_EXPR_DATA:
								data = ead.Bytes()
							}
						}
						e, err := decodeExpr(name, data)
						if err != nil {
							return fmt.Errorf("expression %s: %w", name, err)
						}
						if e == nil {
							r.unknown = append(r.unknown, name)
							return nil
						}
						r.exprs = append(r.exprs, e)
						return nil
					})
				}
				return nil
			})
		}
	}
	return r, table, ad.Err()
}

// decodeExpr decodes the expressions the rule builders use; nil for others.
func decodeExpr(name string, data []byte) (expr.Any, error) {
	var e expr.Any
	switch name {
	case "meta":
		e = &expr.Meta{}
	case "cmp":
		e = &expr.Cmp{}
	case "payload":
		e = &expr.Payload{}
	case "bitwise":
		e = &expr.Bitwise{}
	case "lookup":
		e = &expr.Lookup{}
	case "socket":
		e = &expr.Socket{}
	case "tproxy":
		// google/nftables v0.3.0 decodes the family as a uint8 while the
		// kernel sends a uint32.
		return decodeTProxy(data)
	case "immediate":
		e = &expr.Immediate{}
	case "ct":
		e = &expr.Ct{}
	case "objref":
		e = &expr.Objref{}
	case "exthdr":
		e = &expr.Exthdr{}
	default:
		return nil, nil
	}
	const fam = unix.NFPROTO_INET
	if err := expr.Unmarshal(fam, data, e); err != nil {
		return nil, err
	}
	// A verdict is an immediate into the verdict register.
	if imm, ok := e.(*expr.Immediate); ok && imm.Register == unix.NFT_REG_VERDICT && len(imm.Data) == 0 {
		v := &expr.Verdict{}
		if err := expr.Unmarshal(fam, data, v); err != nil {
			return nil, err
		}
		e = v
	}
	return e, nil
}

func decodeTProxy(data []byte) (expr.Any, error) {
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	e := &expr.TProxy{TableFamily: unix.NFPROTO_INET}
	for ad.Next() {
		switch ad.Type() {
		case expr.NFTA_TPROXY_FAMILY:
			e.Family = byte(ad.Uint32())
		case expr.NFTA_TPROXY_REG_ADDR:
			e.RegAddr = ad.Uint32()
		case expr.NFTA_TPROXY_REG_PORT:
			e.RegPort = ad.Uint32()
		}
	}
	return e, ad.Err()
}
