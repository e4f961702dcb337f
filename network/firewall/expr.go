package firewall

import (
	"net/netip"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The building blocks of berth's rules, each a short list of expressions
// that compares into register 1 (or loads into 1 and 2 for NAT).

const (
	ctStatusDNAT = 0x20 // IPS_DST_NAT, in the kernel's byte order

	ethIPv4 = 0x0800
	ethIPv6 = 0x86dd
)

func cmpEq(data []byte) expr.Any {
	return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data}
}

// ifname pads name as the kernel compares interface names (IFNAMSIZ).
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func metaIs(key expr.MetaKey, data []byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, cmpEq(data)}
}

func iif(name string) []expr.Any    { return metaIs(expr.MetaKeyIIFNAME, ifname(name)) }
func oif(name string) []expr.Any    { return metaIs(expr.MetaKeyOIFNAME, ifname(name)) }
func notOif(name string) []expr.Any { return notIf(expr.MetaKeyOIFNAME, name) }
func notIif(name string) []expr.Any { return notIf(expr.MetaKeyIIFNAME, name) }

func notIf(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(name)}}
}

func nfproto(a netip.Addr) []expr.Any {
	p := byte(unix.NFPROTO_IPV4)
	if a.Is6() {
		p = unix.NFPROTO_IPV6
	}
	return metaIs(expr.MetaKeyNFPROTO, []byte{p})
}

// ethertype is the bridge family's equivalent of nfproto.
func ethertype(a netip.Addr) []expr.Any {
	t := uint16(ethIPv4)
	if a.Is6() {
		t = ethIPv6
	}
	return metaIs(expr.MetaKeyPROTOCOL, binaryutil.BigEndian.PutUint16(t))
}

func l4proto(p byte) []expr.Any { return metaIs(expr.MetaKeyL4PROTO, []byte{p}) }

func port(offset uint32, p uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2},
		cmpEq(binaryutil.BigEndian.PutUint16(p)),
	}
}

func dport(p uint16) []expr.Any { return port(2, p) }
func sport(p uint16) []expr.Any { return port(0, p) }

// addrOffset is where the source (or destination) address is in a's
// family's header.
func addrOffset(a netip.Addr, dst bool) (off, n uint32) {
	if a.Is4() {
		off, n = 12, 4
	} else {
		off, n = 8, 16
	}
	if dst {
		off += n
	}
	return off, n
}

func addr(a netip.Addr, dst bool) []expr.Any {
	off, n := addrOffset(a, dst)
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		cmpEq(a.AsSlice()),
	}
}

func saddr(a netip.Addr) []expr.Any { return addr(a, false) }
func daddr(a netip.Addr) []expr.Any { return addr(a, true) }

func saddrIn(p netip.Prefix) []expr.Any { return addrIn(p, false) }

// srcIn is saddrIn for the inet family, where the header must be told.
func srcIn(p netip.Prefix) []expr.Any   { return join(nfproto(p.Addr()), saddrIn(p)) }
func daddrIn(p netip.Prefix) []expr.Any { return addrIn(p, true) }

// addrIn matches sources (or destinations) in p.
func addrIn(p netip.Prefix, dst bool) []expr.Any {
	p = p.Masked()
	off, n := addrOffset(p.Addr(), dst)
	mask := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)},
		cmpEq(p.Addr().AsSlice()),
	}
}

// ctState matches packets of connections in any of the states (bits).
func ctState(bits uint32) []expr.Any {
	return ctBits(expr.CtKeySTATE, bits)
}

func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func ctDNAT() []expr.Any { return ctBits(expr.CtKeySTATUS, ctStatusDNAT) }

// localDst matches packets to an address of this host; onIif narrows it to
// the addresses of the interface the packet came in by.
func localDst(onIif bool) []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, FlagIIF: onIif, ResultADDRTYPE: true},
		cmpEq(binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)),
	}
}

func natFamily(a netip.Addr) uint32 {
	if a.Is4() {
		return unix.NFPROTO_IPV4
	}
	return unix.NFPROTO_IPV6
}

// dnatTo rewrites the destination to to:p.
func dnatTo(to netip.Addr, p uint16) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: to.AsSlice()},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: natFamily(to),
			RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

// dnatPort rewrites only the destination port, keeping the address the
// packet was sent to (of family's size).
func dnatPort(family netip.Addr, p uint16) []expr.Any {
	off, n := addrOffset(family, true)
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: natFamily(family),
			RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

var (
	accept = &expr.Verdict{Kind: expr.VerdictAccept}
	drop   = &expr.Verdict{Kind: expr.VerdictDrop}
	masq   = &expr.Masq{}
)

func jump(chain string) expr.Any { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }

// join concatenates expression lists and verdicts into one rule body.
func join(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch p := p.(type) {
		case []expr.Any:
			out = append(out, p...)
		case expr.Any:
			out = append(out, p)
		}
	}
	return out
}

// icmpv6ND matches IPv6 neighbour discovery (ICMPv6 types 133 to 137).
func icmpv6ND() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		cmpEq([]byte{unix.IPPROTO_ICMPV6}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{133}, ToData: []byte{137}},
	}
}
