package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// GroupName is the group whose members may use the agent's socket.
const GroupName = "dso"

type peerKey struct{}

// Peer is the process on the other end of a socket connection.
type Peer struct {
	PID, UID, GID int
}

// Listen creates the agent's unix socket at path: the directory is created
// 0755, a stale socket is removed, and the socket is 0660 owned by root and
// the dso group when that group exists.
func Listen(path string) (net.Listener, error) {
	// 0755: the dso group's members must reach the socket inside it.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { //nolint:gosec // see above
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket: remove it or set agent.api.socket", path)
		}
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("another dso agent is already serving %s", path)
		}
		_ = os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil { //nolint:gosec // the dso group uses the socket
		_ = ln.Close()
		return nil, err
	}
	if g, err := user.LookupGroup(GroupName); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil {
			_ = os.Chown(path, 0, gid)
		}
	}
	return ln, nil
}

// Serve serves h on ln until ctx ends. Every request's peer is checked with
// SO_PEERCRED: root, the agent's own uid, or a member of the dso group.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           Authorize(h),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if uc, ok := c.(*net.UnixConn); ok {
				if p, err := peerOf(uc); err == nil {
					return context.WithValue(ctx, peerKey{}, p)
				}
			}
			return ctx
		},
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func peerOf(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) { cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return Peer{}, err
	}
	if serr != nil {
		return Peer{}, serr
	}
	return Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}, nil
}

// PeerFrom returns the request's peer (false when unknown).
func PeerFrom(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// Authorize rejects peers that are not root, the agent's uid, or in the
// dso group. A request without peer credentials is rejected.
func Authorize(h http.Handler) http.Handler {
	self := os.Getuid()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PeerFrom(r.Context())
		if !ok || !Allowed(p, self, dsoGID()) {
			WriteError(w, http.StatusForbidden, "permission denied: add your user to the dso group (sudo usermod -aG dso $USER), then log in again")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Allowed decides for one peer: root, the agent's uid, or a process whose
// primary or supplementary groups include dsoGID (-1: no such group).
func Allowed(p Peer, selfUID, dsoGID int) bool {
	if p.UID == 0 || p.UID == selfUID {
		return true
	}
	if dsoGID < 0 {
		return false
	}
	if p.GID == dsoGID {
		return true
	}
	for _, g := range procGroups(p.PID) {
		if g == dsoGID {
			return true
		}
	}
	return false
}

// procGroups reads the supplementary groups of a process from /proc: the
// groups the peer really runs with, not those in /etc/group today.
func procGroups(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			var out []int
			for _, f := range strings.Fields(rest) {
				if n, err := strconv.Atoi(f); err == nil {
					out = append(out, n)
				}
			}
			return out
		}
	}
	return nil
}

func dsoGID() int {
	g, err := user.LookupGroup(GroupName)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1
	}
	return n
}

// WriteJSON writes v with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError writes an Error body.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, Error{Error: msg})
}
