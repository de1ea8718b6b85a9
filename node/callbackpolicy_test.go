package node

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// One address from each registry row refused, with the row that names it,
// and public addresses, some just outside a refused block, that pass.
func TestCallbackAddressPolicy(t *testing.T) {
	for _, c := range []struct {
		addr, row string // row "" means public
	}{
		{"0.0.0.0", `"This network"`},
		{"0.1.2.3", `"This network"`},
		{"10.1.2.3", "Private-Use"},
		{"100.64.0.1", "Shared Address Space"},
		{"100.127.255.254", "Shared Address Space"},
		{"127.0.0.1", "Loopback"},
		{"127.255.255.255", "Loopback"},
		{"169.254.169.254", "Link Local"},
		{"172.16.0.1", "Private-Use"},
		{"172.31.255.255", "Private-Use"},
		{"192.0.0.1", "IPv4 Service Continuity Prefix"},
		{"192.0.0.8", "IPv4 dummy address"},
		{"192.0.0.9", "IETF Protocol Assignments"},
		{"192.0.0.171", "NAT64/DNS64 Discovery"},
		{"192.0.0.200", "IETF Protocol Assignments"},
		{"192.0.2.1", "Documentation (TEST-NET-1)"},
		{"192.31.196.1", "AS112-v4"},
		{"192.52.193.1", "AMT"},
		{"192.88.99.1", "Deprecated (6to4 Relay Anycast)"},
		{"192.168.1.1", "Private-Use"},
		{"192.175.48.6", "Direct Delegation AS112 Service"},
		{"198.18.0.1", "Benchmarking"},
		{"198.19.255.255", "Benchmarking"},
		{"198.51.100.7", "Documentation (TEST-NET-2)"},
		{"203.0.113.9", "Documentation (TEST-NET-3)"},
		{"224.0.0.1", "Multicast"},
		{"239.255.255.250", "Multicast"},
		{"240.0.0.1", "Reserved"},
		{"255.255.255.254", "Reserved"},
		{"255.255.255.255", "Limited Broadcast"},

		{"::", "Unspecified Address"},
		{"::1", "Loopback Address"},
		{"::127.0.0.1", "IPv4-compatible"},
		{"::8.8.8.8", "IPv4-compatible"},
		{"::ffff:127.0.0.1", "Loopback"},
		{"::ffff:100.64.0.1", "Shared Address Space"},
		{"::ffff:10.0.0.1", "Private-Use"},
		{"64:ff9b::7f00:1", "IPv4-IPv6 Translat."},
		{"64:ff9b::808:808", "IPv4-IPv6 Translat."},
		{"64:ff9b:1::a00:1", "IPv4-IPv6 Translat."},
		{"100::1", "Discard-Only Address Block"},
		{"100:0:0:1::1", "Dummy IPv6 Prefix"},
		{"2001::1", "TEREDO"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "TEREDO"},
		{"2001:1::1", "IETF Protocol Assignments"},
		{"2001:2::1", "Benchmarking"},
		{"2001:4:112::1", "IETF Protocol Assignments"},
		{"2001:10::1", "Deprecated (previously ORCHID)"},
		{"2001:20::1", "ORCHIDv2"},
		{"2001:2f:ffff::1", "ORCHIDv2"},
		{"2001:30::1", "Drone Remote ID"},
		{"2001:db8::1", "Documentation"},
		{"2001:db8:ffff:ffff::1", "Documentation"},
		{"2002:7f00:1::1", "6to4"},
		{"2002:808:808::1", "6to4"},
		{"2620:4f:8000::42", "Direct Delegation AS112 Service"},
		{"3fff::1", "Documentation"},
		{"3fff:fff::1", "Documentation"},
		{"5f00::1", "Segment Routing (SRv6) SIDs"},
		{"fc00::1", "Unique-Local"},
		{"fd12:3456::1", "Unique-Local"},
		{"fe80::1", "Link-Local Unicast"},
		{"fe80::1%eth0", "Link-Local Unicast"},
		{"ff02::1", "Multicast"},
		{"ff0e::1", "Multicast"},
		{"4000::1", "outside Global Unicast"},
		{"e000::1", "outside Global Unicast"},

		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"93.184.216.34", ""},
		{"9.255.255.255", ""},
		{"11.0.0.1", ""},
		{"100.63.255.255", ""},
		{"100.128.0.1", ""},
		{"172.15.255.255", ""},
		{"172.32.0.1", ""},
		{"192.0.1.1", ""},
		{"192.0.3.1", ""},
		{"192.167.255.255", ""},
		{"192.169.0.1", ""},
		{"198.17.255.255", ""},
		{"198.20.0.1", ""},
		{"223.255.255.255", ""},
		{"::ffff:8.8.8.8", ""},
		{"2606:4700::1111", ""},
		{"2001:4860:4860::8888", ""},
		{"2a00:1450:4001:80b::200e", ""},
		{"2001:200::1", ""},
		{"2001:db7:ffff::1", ""},
		{"2003::1", ""},
		{"3fff:1000::1", ""},
	} {
		a, err := netip.ParseAddr(c.addr)
		if err != nil {
			t.Fatalf("%s: %v", c.addr, err)
		}
		why := addrRefusal(a)
		if c.row == "" {
			if why != "" || !publicAddr(a) {
				t.Errorf("%s refused (%s); it is public", c.addr, why)
			}
			continue
		}
		if publicAddr(a) || !strings.HasPrefix(why, c.row) {
			t.Errorf("%s: refusal %q; want the row %q", c.addr, why, c.row)
		}
	}
	if publicAddr(netip.Addr{}) {
		t.Error("the zero Addr is public")
	}
	// Every row refuses its first and its last address.
	for _, r := range specialRanges {
		first := r.prefix.Addr()
		last := first
		bits := first.BitLen() - r.prefix.Bits()
		b := last.AsSlice()
		for i := len(b) - 1; bits > 0; i-- {
			n := min(bits, 8)
			b[i] |= byte(1<<n - 1)
			bits -= n
		}
		last, _ = netip.AddrFromSlice(b)
		for _, a := range []netip.Addr{first, last} {
			if publicAddr(a) {
				t.Errorf("%s (%s) is public", a, r.name)
			}
		}
	}
}

func TestValidCallbackURLPolicy(t *testing.T) {
	for _, c := range []struct {
		url     string
		private bool
		ok      bool
	}{
		{"https://8.8.8.8/hook", false, true},
		{"http://1.1.1.1:8443/x", false, true},
		{"https://[2606:4700::1111]/hook", false, true},
		{"https://[2606:4700::1111]:8443/hook", false, true},
		{"https://[::ffff:8.8.8.8]/hook", false, true},
		{"https://hooks.example.com./x", false, true},
		{"https://hooks.example.com/x", false, true},
		{"https://1password.com/x", false, true},

		{"http://100.64.0.1/x", false, false},
		{"http://198.18.0.1/x", false, false},
		{"http://192.0.2.1/x", false, false},
		{"http://0.0.0.0:8080/x", false, false},
		{"http://255.255.255.255/x", false, false},
		{"http://240.0.0.1/x", false, false},
		{"http://224.0.0.1/x", false, false},
		{"http://[::ffff:127.0.0.1]/x", false, false},
		{"http://[::ffff:7f00:1]/x", false, false},
		{"http://[::127.0.0.1]/x", false, false},
		{"http://[::7f00:1]:8080/x", false, false},
		{"http://[64:ff9b::a9fe:a9fe]/latest/meta-data", false, false},
		{"http://[64:ff9b:1::a00:1]/x", false, false},
		{"http://[2002:a9fe:a9fe::1]/x", false, false},
		{"http://[2001::1]/x", false, false},
		{"http://[2001:db8::1]:8080/x", false, false},
		{"http://[3fff::1]/x", false, false},
		{"http://[2001:10::1]/x", false, false},
		{"http://[2001:20::1]/x", false, false},
		{"http://[100::1]/x", false, false},
		{"http://[fd00::1]/x", false, false},
		{"http://[fe80::1%25eth0]/x", false, false},
		{"http://[ff02::1]/x", false, false},
		{"http://[::]/x", false, false},
		{"http://localhost./x", false, false},
		{"http://api.localhost/x", false, false},
		{"http://127.0.0.1./x", false, false},
		{"http://127.1/x", false, false},
		{"http://2130706433/x", false, false},
		{"http://0x7f000001/x", false, false},
		{"http://0x7f.1/x", false, false},
		{"http://0177.0.0.1/x", false, false},

		// --callback-allow-private lets all of them through.
		{"http://100.64.0.1/x", true, true},
		{"http://[64:ff9b::7f00:1]/x", true, true},
		{"http://127.1/x", true, true},
	} {
		err := validCallbackURL(c.url, c.private)
		switch {
		case c.ok && err != nil:
			t.Errorf("%s (private %v): %v", c.url, c.private, err)
		case !c.ok && (err == nil || err.Error() != "callback_url must be a public http(s) URL" || !errorsIsInvalid(err)):
			t.Errorf("%s (private %v) = %v; want it refused as not public", c.url, c.private, err)
		}
	}
}

// The dialer checks the address it connects to, in the Control hook that
// runs after the socket is made and before connect: a refused address
// sees no packet.
func TestCallbackDialerRefusesCGNAT(t *testing.T) {
	dial := callbackHTTP(false).Transport.(*http.Transport).DialContext
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, addr := range []string{"100.64.0.1:80", "[64:ff9b::a9fe:a9fe]:80", "[::ffff:100.64.0.1]:80", "198.18.0.1:443"} {
		start := time.Now()
		c, err := dial(ctx, "tcp", addr)
		if c != nil {
			c.Close()
		}
		if !errors.Is(err, errPrivateCallback) {
			t.Errorf("dial %s: %v; want errPrivateCallback", addr, err)
		}
		// Refused before connect, so not after a connect timeout.
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("dial %s took %v", addr, d)
		}
	}

	// A listener on loopback never sees the connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	if _, err := dial(ctx, "tcp", ln.Addr().String()); !errors.Is(err, errPrivateCallback) {
		t.Fatalf("dial loopback listener: %v", err)
	}
	client := callbackHTTP(false)
	if _, err := client.Post("http://"+ln.Addr().String()+"/hook", "application/json", strings.NewReader("{}")); !errors.Is(err, errPrivateCallback) {
		t.Fatalf("POST to the loopback listener: %v", err)
	}
	select {
	case <-accepted:
		t.Fatal("the listener accepted a connection the policy refused")
	case <-time.After(200 * time.Millisecond):
	}
	// --callback-allow-private: the same listener is reached.
	c, err := callbackHTTP(true).Transport.(*http.Transport).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with private allowed: %v", err)
	}
	c.Close()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("with private allowed, the listener saw nothing")
	}
}
