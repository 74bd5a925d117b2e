package hosts_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/statelab/statelab/compare/hosts"
	"github.com/statelab/statelab/internal/labtest"
	"github.com/statelab/statelab/internal/pgserver"
	"github.com/statelab/statelab/internal/redisserver"
)

// TestServicesOnHosts starts the lab's shared services each on a host of
// its own, as --hosts netns does, and checks that each listens on its
// host's address and well-known port, answers a client on another host
// across the bridge, and still wants its password there.
func TestServicesOnHosts(t *testing.T) {
	labtest.NeedRoot(t, "services on network namespaces")
	labtest.NeedProgram(t, "redis-server", redisserver.LookPath)
	labtest.NeedProgram(t, "PostgreSQL", pgserver.LookPath)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lab, err := hosts.Open(ctx, hosts.Config{Prefix: testPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	host := func(name string) *hosts.Host {
		h, err := lab.Host(name)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	client := host("replica")

	t.Run("redis-server", func(t *testing.T) {
		h := host("redis")
		srv, err := redisserver.StartOn(ctx, t.TempDir(), h)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Stop()
		if want := net.JoinHostPort(h.IP(), strconv.Itoa(redisserver.Port)); srv.Addr() != want {
			t.Errorf("Addr() = %s, want %s", srv.Addr(), want)
		}
		for _, tc := range []struct{ send, want string }{
			{"PING\r\n", "-NOAUTH"},
			{"AUTH " + srv.Password() + "\r\nPING\r\n", "+OK +PONG"},
		} {
			c, err := client.DialContext(ctx, "tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprint(c, tc.send)
			r := bufio.NewReader(c)
			var got []string
			for range strings.Count(tc.send, "\r\n") {
				line, _ := r.ReadString('\n')
				got = append(got, strings.Fields(line + " ")[0])
			}
			c.Close()
			if strings.Join(got, " ") != tc.want {
				t.Errorf("from another host, %q answered %q; want %q", tc.send, got, tc.want)
			}
		}
	})

	t.Run("postgres", func(t *testing.T) {
		h := host("postgres")
		// Run as root, PostgreSQL runs as the user postgres, which must
		// reach the directory.
		dir, err := os.MkdirTemp("", "statelab-hosts-pg-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		srv, err := pgserver.StartOn(ctx, dir, h)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Stop()
		if want := net.JoinHostPort(h.IP(), strconv.Itoa(pgserver.Port)); srv.Addr() != want {
			t.Errorf("Addr() = %s, want %s", srv.Addr(), want)
		}
		connect := func(url string) error {
			cfg, err := pgx.ParseConfig(url)
			if err != nil {
				return err
			}
			cfg.DialFunc = client.DialContext // from the client's host
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			var one int
			return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
		}
		if err := connect(srv.URLWithPassword(pgserver.Database)); err != nil {
			t.Errorf("from another host with the password: %v", err)
		}
		t.Setenv(pgserver.EnvPassword, "wrong")
		if err := connect(srv.URL(pgserver.Database)); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
			t.Errorf("from another host with a wrong password: %v; want password authentication failed", err)
		}
	})
}
