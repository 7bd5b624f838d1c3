package v1alpha1

import (
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateNotifications checks spec.notifications: each sink has a unique
// DNS-label name, an absolute http(s) URL without credentials in it, known
// event types (each at most once), an HMAC secret from env or file, and a
// positive timeout when one is set.
func validateNotifications(p *field.Path, sinks []NotificationSink) field.ErrorList {
	var errs field.ErrorList
	names := map[string]int{}
	for i := range sinks {
		s := &sinks[i]
		sp := p.Index(i)
		if ne := validateName(sp.Child("name"), s.Name); len(ne) > 0 {
			errs = append(errs, ne...)
		} else if j, ok := names[s.Name]; ok {
			errs = append(errs, duplicate(sp.Child("name"), fmt.Sprintf("the same sink name is already used by notifications[%d]: names must be unique", j)))
		} else {
			names[s.Name] = i
		}
		errs = append(errs, validateSinkURL(sp.Child("url"), s.URL)...)
		seen := map[string]int{}
		for k, ev := range s.Events {
			ep := sp.Child("events").Index(k)
			if !contains(NotificationEvents, ev) {
				errs = append(errs, notSupported(ep, "must be one of "+strings.Join(NotificationEvents, ", ")+" (leave events empty for all)"))
				continue
			}
			if j, ok := seen[ev]; ok {
				errs = append(errs, duplicate(ep, fmt.Sprintf("the same event is already listed as events[%d]", j)))
			}
			seen[ev] = k
		}
		if s.Secret == nil {
			errs = append(errs, required(sp.Child("secret"), "a signing secret is required so receivers can verify deliveries: set secret: {fromEnv: NAME} or {fromFile: PATH}"))
		} else {
			errs = append(errs, validateValueSource(sp.Child("secret"), s.Secret)...)
		}
		errs = append(errs, positiveDuration(sp.Child("timeout"), s.Timeout)...)
	}
	return errs
}

// validateSinkURL wants an absolute http(s) URL with a host. Credentials in
// the URL are refused: they would sit in plain text in the config file, the
// very thing ValueSource exists to avoid.
func validateSinkURL(p *field.Path, v string) field.ErrorList {
	if v == "" {
		return field.ErrorList{required(p, "the webhook's URL is required, e.g. https://hooks.example/dso")}
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return field.ErrorList{invalid(p, "must be an absolute http:// or https:// URL with a host, e.g. https://hooks.example/dso")}
	}
	if u.User != nil {
		return field.ErrorList{forbidden(p, "must not contain credentials: receivers verify deliveries by the X-DSO-Signature header instead")}
	}
	return nil
}
