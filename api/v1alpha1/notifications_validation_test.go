package v1alpha1

import (
	"slices"
	"strings"
	"testing"
)

func validSinks() []NotificationSink {
	return []NotificationSink{
		{Name: "ops", URL: "https://hooks.example/dso", Secret: &ValueSource{FromEnv: "DSO_HOOK_KEY"}},
		{Name: "pager", URL: "http://127.0.0.1:9000/x", Events: []string{EventRotationFailed, EventRecoveryFailed},
			Secret: &ValueSource{FromFile: "/etc/dso/pager.key"}},
	}
}

func TestValidateNotifications(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s []NotificationSink) []NotificationSink
		want   []string // exact rendered messages; nil = valid
	}{
		{"valid", func(s []NotificationSink) []NotificationSink { return s }, nil},
		{"none", func([]NotificationSink) []NotificationSink { return nil }, nil},
		{"duplicate name", func(s []NotificationSink) []NotificationSink { s[1].Name = "ops"; return s },
			[]string{"spec.notifications[1].name: the same sink name is already used by notifications[0]: names must be unique"}},
		{"empty name", func(s []NotificationSink) []NotificationSink { s[0].Name = ""; return s },
			[]string{"spec.notifications[0].name: a name is required"}},
		{"missing url", func(s []NotificationSink) []NotificationSink { s[0].URL = ""; return s },
			[]string{"spec.notifications[0].url: the webhook's URL is required, e.g. https://hooks.example/dso"}},
		{"relative url", func(s []NotificationSink) []NotificationSink { s[0].URL = "/hooks/dso"; return s },
			[]string{"spec.notifications[0].url: must be an absolute http:// or https:// URL with a host, e.g. https://hooks.example/dso"}},
		{"other scheme", func(s []NotificationSink) []NotificationSink { s[0].URL = "ftp://hooks.example/dso"; return s },
			[]string{"spec.notifications[0].url: must be an absolute http:// or https:// URL with a host, e.g. https://hooks.example/dso"}},
		{"credentials in url", func(s []NotificationSink) []NotificationSink { s[0].URL = "https://u:hunter2@hooks.example/"; return s },
			[]string{"spec.notifications[0].url: must not contain credentials: receivers verify deliveries by the X-DSO-Signature header instead"}},
		{"unknown event", func(s []NotificationSink) []NotificationSink { s[1].Events = []string{"rotation_started"}; return s },
			[]string{"spec.notifications[1].events[0]: must be one of rotation_succeeded, rotation_failed, recovery_succeeded, recovery_failed (leave events empty for all)"}},
		{"duplicate event", func(s []NotificationSink) []NotificationSink {
			s[1].Events = append(s[1].Events, EventRotationFailed)
			return s
		},
			[]string{"spec.notifications[1].events[2]: the same event is already listed as events[0]"}},
		{"no secret", func(s []NotificationSink) []NotificationSink { s[0].Secret = nil; return s },
			[]string{"spec.notifications[0].secret: a signing secret is required so receivers can verify deliveries: set secret: {fromEnv: NAME} or {fromFile: PATH}"}},
		{"empty secret source", func(s []NotificationSink) []NotificationSink { s[0].Secret = &ValueSource{}; return s },
			[]string{"spec.notifications[0].secret: set exactly one of fromEnv (an environment variable name) or fromFile (an absolute path)"}},
		{"zero timeout", func(s []NotificationSink) []NotificationSink { d := Duration(0); s[0].Timeout = &d; return s },
			[]string{"spec.notifications[0].timeout: must be a positive duration, e.g. 30s, 5m or 1h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := AgentConfig{Spec: AgentConfigSpec{Notifications: tt.mutate(validSinks())}}
			got := messages(c.Validate())
			if !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
			for _, m := range got {
				if strings.Contains(m, "hunter2") {
					t.Errorf("error leaks the URL's password: %q", m)
				}
			}
		})
	}
}
