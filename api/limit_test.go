package api

import "testing"

func TestAddressKey(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5000":                "ip 127.0.0.1",
		"[::ffff:192.0.2.7]:80":         "ip 192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:443":    "ip 2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb:cccc::9]:1": "ip 2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:1":           "ip 2001:db8:1:3::/64",
		"[fe80::1%eth0]:22":             "ip fe80::/64",
		"[::1]:8080":                    "ip ::/64",
		"not an address":                "ip not an address",
		"@":                             "ip @",
	} {
		if got := addressKey(addr); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", addr, got, want)
		}
	}
}
