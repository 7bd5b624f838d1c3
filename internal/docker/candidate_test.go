package docker

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

const oldID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func inspectFixture() container.InspectResponse {
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID:    oldID,
			Name:  "/shop-api-1",
			Image: "sha256:feedface",
			HostConfig: &container.HostConfig{
				NetworkMode:   "shop_default",
				RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3},
				Binds:         []string{"/srv/data:/data:ro"},
				Tmpfs:         map[string]string{"/tmp": ""},
				DNS:           []string{"10.0.0.53"},
				ExtraHosts:    []string{"db:10.0.0.5"},
				CapAdd:        []string{"NET_ADMIN"},
			},
		},
		Mounts: []container.MountPoint{
			{Type: mount.TypeBind, Source: "/srv/data", Destination: "/data"},
			{Type: mount.TypeVolume, Name: "3f1e…anon", Destination: "/var/cache/app", RW: true},
			{Type: mount.TypeVolume, Name: "named-vol", Destination: "/state", RW: false},
			{Type: mount.TypeBind, Source: "/run/dso/secrets/old", Destination: "/run/secrets"},
		},
		Config: &container.Config{
			Hostname:     oldID[:12],
			Image:        "shop/api:latest",
			Env:          []string{"PATH=/bin", "DB_PASSWORD=old", "STALE=x", "KEEP=1"},
			ExposedPorts: nat.PortSet{"8080/tcp": {}},
			Labels: map[string]string{
				"com.docker.compose.project":     "shop",
				"com.docker.compose.service":     "api",
				"com.docker.compose.config-hash": "abc",
				LabelEnvKeys:                     "DB_PASSWORD,STALE",
			},
			StopSignal: "SIGINT",
		},
		NetworkSettings: &container.NetworkSettings{
			Networks: map[string]*network.EndpointSettings{
				"shop_default": {
					Aliases:    []string{"api", oldID[:12]},
					MacAddress: "02:42:ac:11:00:02",
					IPAddress:  "172.18.0.2",
					NetworkID:  "n1",
					IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "172.18.0.2"},
				},
				"backend": {Aliases: []string{"api-backend"}, EndpointID: "e2"},
			},
		},
	}
}

func TestCandidateSpec(t *testing.T) {
	old := inspectFixture()
	spec, err := CandidateSpec(old, CandidateOptions{
		Name:   "shop-api-1-dso-candidate",
		Env:    map[string]string{"DB_PASSWORD": "new"},
		Mounts: []SecretMount{{Source: "/run/dso/secrets/api-db", Target: "/run/secrets"}},
		Labels: map[string]string{LabelManaged: "true", LabelReplaces: oldID},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, hc := spec.Config, spec.HostConfig
	checks := []struct {
		name      string
		got, want any
	}{
		{"image by id", c.Image, "sha256:feedface"},
		{"default hostname dropped", c.Hostname, ""},
		{"env: stale dso key dropped, desired set, user keys kept", c.Env, []string{"PATH=/bin", "KEEP=1", "DB_PASSWORD=new"}},
		{"env keys label", c.Labels[LabelEnvKeys], "DB_PASSWORD"},
		{"compose labels verbatim", c.Labels["com.docker.compose.config-hash"], "abc"},
		{"dso label added", c.Labels[LabelManaged], "true"},
		{"restart policy remembered", c.Labels[LabelRestartPolicy], "on-failure:3"},
		{"restart policy no until cutover", hc.RestartPolicy.Name, container.RestartPolicyDisabled},
		{"stop signal kept", c.StopSignal, "SIGINT"},
		{"dns kept", hc.DNS, []string{"10.0.0.53"}},
		{"extra hosts kept", hc.ExtraHosts, []string{"db:10.0.0.5"}},
		{"caps kept", []string(hc.CapAdd), []string{"NET_ADMIN"}},
		{"binds kept", hc.Binds, []string{"/srv/data:/data:ro"}},
		{"mounts: anonymous + named volumes by name, secret dir replaced", hc.Mounts, []mount.Mount{
			{Type: mount.TypeVolume, Source: "3f1e…anon", Target: "/var/cache/app"},
			{Type: mount.TypeVolume, Source: "named-vol", Target: "/state", ReadOnly: true},
			{Type: mount.TypeBind, Source: "/run/dso/secrets/api-db", Target: "/run/secrets", ReadOnly: true},
		}},
		{"network order: NetworkMode first", []string{spec.Networks[0].Name, spec.Networks[1].Name}, []string{"shop_default", "backend"}},
		{"short-id alias dropped", spec.Networks[0].Endpoint.Aliases, []string{"api"}},
		{"no MAC copied", spec.Networks[0].Endpoint.MacAddress, ""},
		{"static IP kept", spec.Networks[0].Endpoint.IPAMConfig.IPv4Address, "172.18.0.2"},
		{"operational data not copied", spec.Networks[1].Endpoint.EndpointID, ""},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: got %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
	// The old inspect data must not be modified.
	if !slices.Equal(old.Config.Env, []string{"PATH=/bin", "DB_PASSWORD=old", "STALE=x", "KEEP=1"}) || old.HostConfig.RestartPolicy.Name != container.RestartPolicyOnFailure {
		t.Errorf("CandidateSpec modified its input")
	}
}

func TestCandidateSpecPorts(t *testing.T) {
	old := inspectFixture()
	old.HostConfig.PortBindings = nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1", HostPort: "18080"}}}
	if !HasHostPorts(old) {
		t.Fatal("HasHostPorts = false for a published port")
	}
	for _, keep := range []bool{false, true} {
		spec, err := CandidateSpec(old, CandidateOptions{KeepPorts: keep})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(spec.HostConfig.PortBindings) > 0; got != keep {
			t.Errorf("KeepPorts=%v: port bindings copied = %v", keep, got)
		}
	}
}

func TestCandidateSpecSharedNamespace(t *testing.T) {
	old := inspectFixture()
	old.HostConfig.NetworkMode = "container:abc"
	if _, err := CandidateSpec(old, CandidateOptions{}); !errors.Is(err, ErrSharedNamespace) {
		t.Fatalf("err = %v, want ErrSharedNamespace", err)
	}
}

func TestRestartPolicyRoundTrip(t *testing.T) {
	for _, s := range []string{"no", "always", "unless-stopped", "on-failure", "on-failure:5"} {
		p, err := ParseRestartPolicy(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got := FormatRestartPolicy(p); got != s {
			t.Errorf("round trip %q -> %q", s, got)
		}
	}
	for _, bad := range []string{"sometimes", "always:3", "on-failure:x", "on-failure:-1"} {
		if _, err := ParseRestartPolicy(bad); err == nil {
			t.Errorf("ParseRestartPolicy(%q) accepted", bad)
		}
	}
}

func TestCandidateKeepsMountFlagAnonymousVolume(t *testing.T) {
	old := inspectFixture()
	old.HostConfig.Mounts = []mount.Mount{{Type: mount.TypeVolume, Target: "/data"}}
	old.Mounts = append(old.Mounts, container.MountPoint{Type: mount.TypeVolume, Name: "anon-data-123", Destination: "/data", RW: true})
	spec, err := CandidateSpec(old, CandidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range spec.HostConfig.Mounts {
		if m.Target == "/data" {
			n++
			if m.Source != "anon-data-123" {
				t.Errorf("/data source = %q, want the old anonymous volume", m.Source)
			}
		}
	}
	if n != 1 {
		t.Errorf("/data mounted %d times", n)
	}
}

// TestCandidateDropsBindAtSecretTarget: a bind the old container has at a
// path dso mounts a secret directory at (a compose file naming the wrong
// live dir) gives way to dso's mount; other binds are kept as they were.
func TestCandidateDropsBindAtSecretTarget(t *testing.T) {
	old := inspectFixture()
	old.HostConfig.Binds = []string{"/run/dso/secrets/P-web-1/live/run__secrets:/run/secrets/:ro", "/srv/data:/data:rw", "/etc/app.conf:/etc/app.conf"}
	spec, err := CandidateSpec(old, CandidateOptions{Mounts: []SecretMount{{Source: "/run/dso/secrets/P_web_1/live/run__secrets", Target: "/run/secrets"}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/srv/data:/data:rw", "/etc/app.conf:/etc/app.conf"}; !reflect.DeepEqual(spec.HostConfig.Binds, want) {
		t.Errorf("binds = %q, want %q", spec.HostConfig.Binds, want)
	}
	n := 0
	for _, m := range spec.HostConfig.Mounts {
		if m.Target == "/run/secrets" {
			n++
			if m.Source != "/run/dso/secrets/P_web_1/live/run__secrets" || !m.ReadOnly {
				t.Errorf("secret mount = %+v, want dso's read-only live dir", m)
			}
		}
	}
	if n != 1 {
		t.Errorf("/run/secrets mounted %d times, want once", n)
	}
}
