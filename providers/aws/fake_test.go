package aws

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSM is an in-process fake of the Secrets Manager wire protocol (AWS
// JSON 1.1: POST / with X-Amz-Target, errors as HTTP 400 with __type). It
// exists so the tests drive the real SDK, including its signer, serializer,
// error deserializer and retryer.
type fakeSM struct {
	srv *httptest.Server

	mu      sync.Mutex
	secrets map[string][]fakeVersion // name -> versions, the first one is AWSCURRENT
	calls   map[string]int           // X-Amz-Target suffix -> count
	batches [][]string               // SecretIdList of every BatchGetSecretValue
	keyIDs  map[string]bool          // access key ids seen in Authorization headers
	// throttle answers the next N requests with ThrottlingException.
	throttle int
	// denied lists secret names answered with AccessDeniedException.
	denied map[string]bool
	// listDenied makes ListSecrets answer AccessDeniedException.
	listDenied bool
	// rejectKeys makes every request fail with UnrecognizedClientException.
	rejectKeys bool
	// batchErrors lists names reported in BatchGetSecretValue's Errors list.
	batchErrors map[string]string
	// delay holds every request this long (or until the client gives up).
	delay time.Duration
}

type fakeVersion struct {
	id     string
	stages []string
	str    *string
	bin    []byte
}

func newFakeSM(t testing.TB) *fakeSM {
	f := &fakeSM{secrets: map[string][]fakeVersion{}, calls: map[string]int{},
		keyIDs: map[string]bool{}, denied: map[string]bool{}, batchErrors: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSM) putString(name, id, value string, stages ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := value
	f.secrets[name] = append(f.secrets[name], fakeVersion{id: id, stages: stages, str: &v})
}

func (f *fakeSM) putBinary(name, id string, value []byte, stages ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[name] = append(f.secrets[name], fakeVersion{id: id, stages: stages, bin: value})
}

func (f *fakeSM) count(target string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[target]
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

type entry struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionId     string   `json:"VersionId"`
	SecretString  *string  `json:"SecretString,omitempty"`
	SecretBinary  []byte   `json:"SecretBinary,omitempty"` // base64, as JSON 1.1 blobs are
	VersionStages []string `json:"VersionStages"`
	CreatedDate   float64  `json:"CreatedDate"`
}

func arn(name string) string {
	return "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + name + "-AbCdEf"
}

// lookup finds a version by id, stage, or AWSCURRENT. Callers hold f.mu.
func (f *fakeSM) lookup(id, versionID, stage string) (entry, string) {
	name := id
	if strings.HasPrefix(id, "arn:") {
		name = strings.TrimSuffix(strings.TrimPrefix(id, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"), "-AbCdEf")
	}
	if f.denied[name] {
		return entry{}, "AccessDeniedException"
	}
	vs, ok := f.secrets[name]
	if !ok {
		return entry{}, "ResourceNotFoundException"
	}
	if versionID == "" && stage == "" {
		stage = "AWSCURRENT"
	}
	for _, v := range vs {
		match := versionID != "" && v.id == versionID
		for _, s := range v.stages {
			match = match || (versionID == "" && s == stage)
		}
		if match {
			return entry{ARN: arn(name), Name: name, VersionId: v.id, SecretString: v.str,
				SecretBinary: v.bin, VersionStages: v.stages, CreatedDate: 1.7e9}, ""
		}
	}
	return entry{}, "ResourceNotFoundException"
}

func (f *fakeSM) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeErr(w, 404, "UnknownOperationException", "only POST / is served")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		writeErr(w, 400, "SerializationException", "content type "+ct)
		return
	}
	auth := r.Header.Get("Authorization")
	const prefix = "AWS4-HMAC-SHA256 Credential="
	if !strings.HasPrefix(auth, prefix) {
		writeErr(w, 400, "MissingAuthenticationTokenException", "request is not signed")
		return
	}
	keyID, _, _ := strings.Cut(strings.TrimPrefix(auth, prefix), "/")
	target := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
	// Read the body first: net/http notices a client that went away (the
	// deadline test) only once the request body has been consumed.
	var in struct {
		SecretId     string
		VersionId    string
		VersionStage string
		SecretIdList []string
		MaxResults   int
		NextToken    string
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeErr(w, 400, "SerializationException", err.Error())
		return
	}

	f.mu.Lock()
	f.calls[target]++
	f.keyIDs[keyID] = true
	throttled := f.throttle > 0
	if throttled {
		f.throttle--
	}
	reject, delay := f.rejectKeys, f.delay
	f.mu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if throttled {
		writeErr(w, 400, "ThrottlingException", "Rate exceeded")
		return
	}
	if reject {
		writeErr(w, 400, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	switch target {
	case "GetSecretValue":
		e, code := f.lookup(in.SecretId, in.VersionId, in.VersionStage)
		if code != "" {
			writeErr(w, 400, code, fmt.Sprintf("fake: %s for the requested secret", code))
			return
		}
		writeJSON(w, e)
	case "BatchGetSecretValue":
		if len(in.SecretIdList) > 20 {
			writeErr(w, 400, "InvalidParameterException", "more than 20 ids")
			return
		}
		f.batches = append(f.batches, append([]string(nil), in.SecretIdList...))
		type apiErr struct{ SecretId, ErrorCode, Message string }
		out := struct {
			SecretValues []entry
			Errors       []apiErr
		}{SecretValues: []entry{}, Errors: []apiErr{}}
		for _, id := range in.SecretIdList {
			if code, ok := f.batchErrors[id]; ok {
				out.Errors = append(out.Errors, apiErr{id, code, "fake batch error"})
				continue
			}
			e, code := f.lookup(id, "", "")
			if code != "" {
				out.Errors = append(out.Errors, apiErr{id, code, "fake batch error"})
				continue
			}
			out.SecretValues = append(out.SecretValues, e)
		}
		writeJSON(w, out)
	case "ListSecrets":
		if f.listDenied {
			writeErr(w, 400, "AccessDeniedException", "not authorized to perform secretsmanager:ListSecrets")
			return
		}
		writeJSON(w, map[string]any{"SecretList": []any{}})
	default:
		writeErr(w, 400, "UnknownOperationException", target)
	}
}
