package node

import "net/netip"

// Which addresses a completion callback may reach. A callback_url is chosen
// by whoever uploads, and the leader POSTs to it from inside the cluster's
// network, so an address that is not a public one would let an uploader
// make the cluster call its own internals (a metadata service, an admin
// port, a host behind carrier NAT). The policy is "globally routable
// unicast": anything the IANA special-purpose registries set apart is
// refused, whether or not the registry calls it globally reachable, since
// none of those blocks holds a web server a callback is meant for.
//
// Sources: the IANA IPv4 and IPv6 Special-Purpose Address Registries
// (iana-ipv4-special-registry, iana-ipv6-special-registry), plus IPv4
// multicast and the IPv6 address-space registry's Global Unicast block.

// specialRange is a registry row: a prefix and the registry's name for it.
type specialRange struct {
	prefix netip.Prefix
	name   string
}

func sr(prefix, name string) specialRange {
	return specialRange{prefix: netip.MustParsePrefix(prefix), name: name}
}

// specialRanges are refused. Rows inside a larger row come first, so an
// address is named by its most specific row.
var specialRanges = []specialRange{
	// IPv4 Special-Purpose Address Registry.
	sr("0.0.0.0/8", `"This network" (RFC 791)`),
	sr("10.0.0.0/8", "Private-Use (RFC 1918)"),
	sr("100.64.0.0/10", "Shared Address Space (RFC 6598)"),
	sr("127.0.0.0/8", "Loopback (RFC 1122)"),
	sr("169.254.0.0/16", "Link Local (RFC 3927)"),
	sr("172.16.0.0/12", "Private-Use (RFC 1918)"),
	sr("192.0.0.0/29", "IPv4 Service Continuity Prefix (RFC 7335)"),
	sr("192.0.0.8/32", "IPv4 dummy address (RFC 7600)"),
	sr("192.0.0.170/31", "NAT64/DNS64 Discovery (RFC 8880)"),
	// Includes 192.0.0.9 and 192.0.0.10, PCP and TURN anycast: protocol
	// services, not callback receivers.
	sr("192.0.0.0/24", "IETF Protocol Assignments (RFC 6890)"),
	sr("192.0.2.0/24", "Documentation (TEST-NET-1) (RFC 5737)"),
	sr("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
	sr("192.52.193.0/24", "AMT (RFC 7450)"),
	sr("192.88.99.0/24", "Deprecated (6to4 Relay Anycast) (RFC 7526)"),
	sr("192.168.0.0/16", "Private-Use (RFC 1918)"),
	sr("192.175.48.0/24", "Direct Delegation AS112 Service (RFC 7534)"),
	sr("198.18.0.0/15", "Benchmarking (RFC 2544)"),
	sr("198.51.100.0/24", "Documentation (TEST-NET-2) (RFC 5737)"),
	sr("203.0.113.0/24", "Documentation (TEST-NET-3) (RFC 5737)"),
	sr("255.255.255.255/32", "Limited Broadcast (RFC 919)"),
	sr("240.0.0.0/4", "Reserved (RFC 1112)"),
	// IPv4 Multicast Address Space Registry.
	sr("224.0.0.0/4", "Multicast (RFC 5771)"),

	// IPv6 Special-Purpose Address Registry.
	sr("::/128", "Unspecified Address (RFC 4291)"),
	sr("::1/128", "Loopback Address (RFC 4291)"),
	// Deprecated by RFC 4291 and not in the registry; a dialer may still
	// reach the IPv4 address in its low bits, which would go unchecked.
	sr("::/96", "IPv4-compatible IPv6 address (deprecated, RFC 4291)"),
	// The registry calls 64:ff9b::/96 globally reachable, but a NAT64
	// translator in this network would carry the POST to the IPv4 address
	// embedded in it, whatever that is: the check would see the wrong
	// address. The same holds for 6to4 and Teredo below.
	sr("64:ff9b::/96", "IPv4-IPv6 Translat. (RFC 6052)"),
	sr("64:ff9b:1::/48", "IPv4-IPv6 Translat. (RFC 8215)"),
	sr("100::/64", "Discard-Only Address Block (RFC 6666)"),
	sr("100:0:0:1::/64", "Dummy IPv6 Prefix"),
	sr("2001::/32", "TEREDO (RFC 4380)"),
	sr("2001:2::/48", "Benchmarking (RFC 5180)"),
	sr("2001:10::/28", "Deprecated (previously ORCHID) (RFC 4843)"),
	sr("2001:20::/28", "ORCHIDv2 (RFC 7343)"),
	sr("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix (RFC 9374)"),
	// The rest of the block is anycast for protocol services (PCP, TURN,
	// DNS-SD SRP), AMT and AS112: none a callback receiver.
	sr("2001::/23", "IETF Protocol Assignments (RFC 2928)"),
	sr("2001:db8::/32", "Documentation (RFC 3849)"),
	sr("2002::/16", "6to4 (RFC 3056)"),
	sr("2620:4f:8000::/48", "Direct Delegation AS112 Service (RFC 7534)"),
	sr("3fff::/20", "Documentation (RFC 9637)"),
	sr("5f00::/16", "Segment Routing (SRv6) SIDs (RFC 9602)"),
	sr("fc00::/7", "Unique-Local (RFC 4193)"),
	sr("fe80::/10", "Link-Local Unicast (RFC 4291)"),
	// IPv6 Multicast Address Space Registry.
	sr("ff00::/8", "Multicast (RFC 4291)"),
}

// globalUnicast6 is the only IPv6 block IANA allocates as Global Unicast;
// everything outside it is reserved or special, named in the table or not.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// addrRefusal says why a is not a public unicast address ("" when it is):
// the registry row it falls in.
func addrRefusal(a netip.Addr) string {
	if !a.IsValid() {
		return "not an address"
	}
	// ::ffff:a.b.c.d (IPv4-mapped Address, RFC 4291) is dialled as a.b.c.d,
	// so the IPv4 rows decide. A zone only picks an interface.
	a = a.Unmap().WithZone("")
	for _, r := range specialRanges {
		if r.prefix.Contains(a) {
			return r.name
		}
	}
	if a.Is6() && !globalUnicast6.Contains(a) {
		return "outside Global Unicast 2000::/3 (IANA IPv6 Address Space)"
	}
	return ""
}

// publicAddr reports whether a is globally routable unicast: the address a
// callback may be sent to, when it is named in a callback_url and again
// when it is dialled.
func publicAddr(a netip.Addr) bool { return addrRefusal(a) == "" }
