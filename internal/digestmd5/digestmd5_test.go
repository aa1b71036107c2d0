package digestmd5

import (
	"errors"
	"strings"
	"testing"
)

// The worked example of RFC 2831 section 4 (IMAP, user chris, password
// secret).
const (
	rfcUser     = "chris"
	rfcRealm    = "elwood.innosoft.com"
	rfcPassword = "secret"
	rfcNonce    = "OA6MG9tEQGm2hh"
	rfcCnonce   = "OA6MHXh6VqTrRk"
	rfcURI      = "imap/elwood.innosoft.com"
	rfcResponse = "d388dad90d4bbd760a152321f2143af7"
	rfcRspAuth  = "ea40f60335c427b5527b84dbabcdfffd"
)

func TestRFC2831Example(t *testing.T) {
	if got := Response(rfcUser, rfcRealm, rfcPassword, rfcNonce, rfcCnonce, "00000001", "auth", rfcURI, "", true); got != rfcResponse {
		t.Errorf("response = %s, want %s", got, rfcResponse)
	}
	if got := RspAuth(rfcUser, rfcRealm, rfcPassword, rfcNonce, rfcCnonce, "00000001", "auth", rfcURI, "", true); got != rfcRspAuth {
		t.Errorf("rspauth = %s, want %s", got, rfcRspAuth)
	}
}

// TestExchangeRFC2831 runs the example exchange through Server, with the
// client's message as printed in the RFC.
func TestExchangeRFC2831(t *testing.T) {
	s := &Server{
		Service: "imap", Host: "elwood.innosoft.com", Realm: rfcRealm,
		Password: func(u string) (string, bool) { return rfcPassword, u == rfcUser },
		Nonce:    func() string { return rfcNonce },
	}
	ch, err := s.Next(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",charset=utf-8,algorithm=md5-sess`
	if string(ch) != want {
		t.Errorf("challenge = %s\nwant        %s", ch, want)
	}
	resp := `charset=utf-8,username="chris",realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",nc=00000001,` +
		`cnonce="OA6MHXh6VqTrRk",digest-uri="imap/elwood.innosoft.com",response=d388dad90d4bbd760a152321f2143af7,qop=auth`
	final, err := s.Next([]byte(resp))
	if err != nil {
		t.Fatal(err)
	}
	if string(final) != "rspauth="+rfcRspAuth || !s.Complete() || s.Username() != "chris" {
		t.Errorf("final = %s complete=%v user=%q", final, s.Complete(), s.Username())
	}
	if _, err := s.Next(nil); err == nil {
		t.Error("a third message was accepted")
	}
}

func TestExchangeFailures(t *testing.T) {
	base := `charset=utf-8,username="chris",realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",nc=00000001,` +
		`cnonce="OA6MHXh6VqTrRk",digest-uri="imap/elwood.innosoft.com",response=d388dad90d4bbd760a152321f2143af7,qop=auth`
	cases := []struct {
		name, pw, msg string
		want          error
	}{
		{"wrong password", "public", base, ErrAuthFailed},
		{"unknown user", rfcPassword, strings.Replace(base, `"chris"`, `"mallory"`, 1), ErrAuthFailed},
		{"other nonce", rfcPassword, strings.Replace(base, "OA6MG9tEQGm2hh", "xyz", 1), ErrProtocol},
		{"replayed nc", rfcPassword, strings.Replace(base, "00000001", "00000002", 1), ErrProtocol},
		{"wrong uri", rfcPassword, strings.Replace(base, "imap/elwood", "ldap/elwood", 1), ErrProtocol},
		{"auth-int", rfcPassword, strings.Replace(base, "qop=auth", "qop=auth-int", 1), ErrProtocol},
		{"garbage", rfcPassword, `username="chris`, ErrProtocol},
		{"missing response", rfcPassword, strings.Replace(base, ",response=d388dad90d4bbd760a152321f2143af7", "", 1), ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{
				Service: "imap", Host: "elwood.innosoft.com", Realm: rfcRealm,
				Password: func(u string) (string, bool) { return tc.pw, u == rfcUser },
				Nonce:    func() string { return rfcNonce },
			}
			if _, err := s.Next(nil); err != nil {
				t.Fatal(err)
			}
			_, err := s.Next([]byte(tc.msg))
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if s.Complete() {
				t.Error("complete after failure")
			}
		})
	}
	s := &Server{Password: func(string) (string, bool) { return "", false }}
	if _, err := s.Next([]byte("x")); !errors.Is(err, ErrProtocol) {
		t.Errorf("initial response accepted: %v", err)
	}
}

func TestParse(t *testing.T) {
	got, err := Parse(` a=1 , , b="x\"y\\z,w",c=tok `)
	if err != nil {
		t.Fatal(err)
	}
	if got["a"] != "1" || got["b"] != `x"y\z,w` || got["c"] != "tok" || len(got) != 3 {
		t.Errorf("%q", got)
	}
	for _, bad := range []string{`a=1,a=2`, `a`, `a="x`, `a="x"y`} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestLatin1(t *testing.T) {
	// "é" hashes as one ISO 8859-1 byte when charset=utf-8 is used.
	a := Response("jos\u00e9", "r", "p", "n", "c", "00000001", "auth", "s/h", "", true)
	b := Response("jos\xe9", "r", "p", "n", "c", "00000001", "auth", "s/h", "", false)
	if a != b {
		t.Error("latin-1 conversion not applied")
	}
}
