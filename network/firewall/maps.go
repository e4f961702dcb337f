package firewall

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
)

// vmap is one of a network's verdict maps, which send a packet to the
// chain of the endpoint it concerns in one lookup: the NAT maps are keyed
// by (host address,) protocol and host port; the address maps by a
// container's address as source or destination.
// A vmap's key types are named, not built, so that the package's init
// allocates nothing: every start of the berth binary runs it.
type vmap struct {
	name string
	key  keyKind
}

type keyKind uint8

const (
	keyProtoPort keyKind = iota
	keyIP4ProtoPort
	keyIP6ProtoPort
	keyIP4
	keyIP6
)

func (k keyKind) datatype() nftables.SetDatatype {
	switch k {
	case keyProtoPort:
		return nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	case keyIP4ProtoPort:
		return nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	case keyIP6ProtoPort:
		return nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService)
	case keyIP4:
		return nftables.TypeIPAddr
	}
	return nftables.TypeIP6Addr
}

var (
	mapNATAny4 = vmap{"nat-any4", keyProtoPort}
	mapNATAny6 = vmap{"nat-any6", keyProtoPort}
	mapNATIP4  = vmap{"nat-ip4", keyIP4ProtoPort}
	mapNATIP6  = vmap{"nat-ip6", keyIP6ProtoPort}
	mapSrc4    = vmap{"src4", keyIP4}
	mapDst4    = vmap{"dst4", keyIP4}
	mapSrc6    = vmap{"src6", keyIP6}
	mapDst6    = vmap{"dst6", keyIP6}

	natMaps  = [...]vmap{mapNATAny4, mapNATAny6, mapNATIP4, mapNATIP6}
	addrMaps = [...]vmap{mapSrc4, mapDst4, mapSrc6, mapDst6}
)

// vmapNamed is the map of a name, as a rule's comment gives it.
func vmapNamed(name string) (vmap, bool) {
	for _, m := range append(natMaps[:], addrMaps[:]...) {
		if m.name == name {
			return m, true
		}
	}
	return vmap{}, false
}

// in is the map in table t.
func (m vmap) in(t *nftables.Table) *nftables.Set {
	return &nftables.Set{Table: t, Name: m.name, IsMap: true, KeyType: m.key.datatype(),
		DataType: nftables.TypeVerdict, Concatenation: m.key <= keyIP6ProtoPort}
}

func natAny(a netip.Addr) vmap {
	if a.Is4() {
		return mapNATAny4
	}
	return mapNATAny6
}

func natIP(a netip.Addr) vmap {
	if a.Is4() {
		return mapNATIP4
	}
	return mapNATIP6
}

// addrMapsOf returns the source and destination maps of a's family.
func addrMapsOf(a netip.Addr) (src, dst vmap) {
	if a.Is4() {
		return mapSrc4, mapDst4
	}
	return mapSrc6, mapDst6
}

// Keys are laid out as the kernel concatenates registers: each field
// padded to 4 bytes.
func natAnyKey(proto byte, port uint16) []byte {
	return append([]byte{proto, 0, 0, 0}, append(binaryutil.BigEndian.PutUint16(port), 0, 0)...)
}

func natIPKey(a netip.Addr, proto byte, port uint16) []byte {
	return append(a.AsSlice(), natAnyKey(proto, port)...)
}

// Registers: 1 is the first 16-byte register; 8 + n is its n-th 4-byte
// word, where concatenations put their next fields.
const reg32 = 8

// natLookups are the rules that send a packet to a local address to the
// endpoint that published its port.
func natLookups() [][]expr.Any {
	var out [][]expr.Any
	for _, fam := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
		words := uint32(fam.BitLen() / 32)
		// protoPort loads the protocol and port from the 4-byte word w on.
		protoPort := func(w uint32) []expr.Any {
			return []expr.Any{
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32 + w},
				&expr.Payload{DestRegister: reg32 + w + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			}
		}
		out = append(out, join(nfproto(fam), protoPort(0), lookup(natAny(fam))))
		off, n := addrOffset(fam, true)
		out = append(out, join(nfproto(fam),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
			protoPort(words), lookup(natIP(fam))))
	}
	return out
}

// addrLookups are the rules that send a packet to the chains of the
// endpoints of its source and destination; family is nfproto or
// ethertype.
func addrLookups(family func(netip.Addr) []expr.Any) [][]expr.Any {
	var out [][]expr.Any
	for _, fam := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
		src, dst := addrMapsOf(fam)
		for _, m := range []struct {
			m   vmap
			dst bool
		}{{src, false}, {dst, true}} {
			off, n := addrOffset(fam, m.dst)
			out = append(out, join(family(fam),
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
				lookup(m.m)))
		}
	}
	return out
}

func lookup(m vmap) expr.Any {
	return &expr.Lookup{SourceRegister: 1, SetName: m.name, IsDestRegSet: true, DestRegister: 0}
}
