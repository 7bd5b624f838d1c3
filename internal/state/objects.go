package state

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// checkKindName validates the addressing of an object or status. The message
// names what to fix; it never quotes the record itself.
func checkKindName(kind, name string) error {
	if kind != KindSecretStore && kind != KindSecretBinding {
		return fmt.Errorf("kind %q is not stored: use %s or %s", kind, KindSecretStore, KindSecretBinding)
	}
	if name == "" {
		return fmt.Errorf("%s name is empty: every object needs metadata.name", kind)
	}
	return nil
}

// checkJSON refuses bytes that are not JSON, so a caller that hands in
// something other than a marshalled record fails loudly here instead of
// corrupting `get -o json` later. The bytes are not quoted in the error.
func checkJSON(what string, b []byte) error {
	if !json.Valid(b) {
		return fmt.Errorf("%s is not valid JSON: pass the json.Marshal output of the record", what)
	}
	return nil
}

// PutObject stores an applied object and says what changed: "created" (it
// was not there), "unchanged" (the same bytes; the caller canonicalises the
// JSON so that equal objects are equal bytes) or "configured".
func (s *Store) PutObject(kind, name string, obj []byte) (string, error) {
	if err := checkKindName(kind, name); err != nil {
		return "", err
	}
	if err := checkJSON(kind+" "+name, obj); err != nil {
		return "", err
	}
	result := ""
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketObjects).CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		switch old := b.Get([]byte(name)); {
		case old == nil:
			result = Created
		case bytes.Equal(old, obj):
			result = Unchanged
			return nil // no write: an unchanged apply leaves the file alone
		default:
			result = Configured
		}
		return b.Put([]byte(name), obj)
	})
	if err != nil {
		return "", fmt.Errorf("store %s %s in %s: %w", kind, name, s.path, err)
	}
	return result, nil
}

// GetObject returns a copy of the stored object.
func (s *Store) GetObject(kind, name string) ([]byte, bool, error) {
	return s.get(bucketObjects, kind, name)
}

// DeleteObject removes an object and its status (a status without its object
// would show up in `get` as a ghost).
func (s *Store) DeleteObject(kind, name string) (bool, error) {
	if err := checkKindName(kind, name); err != nil {
		return false, err
	}
	existed := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, top := range [][]byte{bucketObjects, bucketStatuses} {
			b := tx.Bucket(top).Bucket([]byte(kind))
			if b == nil || b.Get([]byte(name)) == nil {
				continue
			}
			if string(top) == string(bucketObjects) {
				existed = true
			}
			if err := b.Delete([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("delete %s %s from %s: %w", kind, name, s.path, err)
	}
	return existed, nil
}

// ListObjects returns every stored object of a kind, by name.
func (s *Store) ListObjects(kind string) (map[string][]byte, error) {
	if err := checkKindName(kind, "-"); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketObjects).Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list %s objects in %s: %w", kind, s.path, err)
	}
	return out, nil
}

// PutStatus stores the last computed status of an object (the JSON of
// v1alpha1.SecretBindingStatus or the store's status; opaque here).
func (s *Store) PutStatus(kind, name string, status []byte) error {
	if err := checkKindName(kind, name); err != nil {
		return err
	}
	if err := checkJSON("status of "+kind+" "+name, status); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketStatuses).CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		if bytes.Equal(b.Get([]byte(name)), status) {
			return nil // statuses are re-put every reconcile; skip the fsync
		}
		return b.Put([]byte(name), status)
	})
	if err != nil {
		return fmt.Errorf("store status of %s %s in %s: %w", kind, name, s.path, err)
	}
	return nil
}

// GetStatus returns a copy of the stored status.
func (s *Store) GetStatus(kind, name string) ([]byte, bool, error) {
	return s.get(bucketStatuses, kind, name)
}

func (s *Store) get(top []byte, kind, name string) ([]byte, bool, error) {
	if err := checkKindName(kind, name); err != nil {
		return nil, false, err
	}
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(top).Bucket([]byte(kind)); b != nil {
			// bbolt's slices die with the transaction: copy.
			if v := b.Get([]byte(name)); v != nil {
				out = bytes.Clone(v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("read %s %s %s from %s: %w", top, kind, name, s.path, err)
	}
	return out, out != nil, nil
}
