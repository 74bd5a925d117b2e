package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/library"
)

func testCreateMember(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)

	tests := []struct {
		name   string
		member library.Member
		code   string
		role   string
	}{
		{"role defaults to member", library.Member{Email: "carol@example.com", Name: "Carol"}, "", library.RoleMember},
		{"librarian", library.Member{Email: "dan@example.com", Name: "Dan", Role: library.RoleLibrarian}, "", library.RoleLibrarian},
		{"no password", library.Member{Email: "erin@example.com", Name: "Erin", PasswordHash: ""}, "", library.RoleMember},
		{"taken email", library.Member{Email: "alice@example.com", Name: "Alice 2"}, library.ECONFLICT, ""},
		{"taken email in other case", library.Member{Email: "ALICE@Example.COM", Name: "Alice 3"}, library.ECONFLICT, ""},
		{"empty email", library.Member{Name: "Nobody"}, library.EINVALID, ""},
		{"not an email", library.Member{Email: "nobody", Name: "Nobody"}, library.EINVALID, ""},
		{"unknown role", library.Member{Email: "frank@example.com", Role: "admin"}, library.EINVALID, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.CreateMember(ctx, tt.member)
			checkCode(t, err, tt.code)
			if err != nil {
				return
			}
			if got.ID == 0 || got.Role != tt.role || got.CreatedAt.IsZero() || got.CreatedAt.Location() != time.UTC {
				t.Errorf("got %+v, want an id, role %q and a UTC creation time", got, tt.role)
			}
			byID, err := db.FindMemberByID(ctx, got.ID)
			if err != nil || byID != got {
				t.Errorf("FindMemberByID: got %+v, %v, want %+v", byID, err, got)
			}
		})
	}
}

func testFindMember(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	alice := memberID(t, db, "alice@example.com")

	tests := []struct {
		name string
		find func() (library.Member, error)
		code string
	}{
		{"by email", func() (library.Member, error) { return db.FindMemberByEmail(ctx, "alice@example.com") }, ""},
		{"by email in other case", func() (library.Member, error) { return db.FindMemberByEmail(ctx, "Alice@EXAMPLE.com") }, ""},
		{"by missing email", func() (library.Member, error) { return db.FindMemberByEmail(ctx, "nobody@example.com") }, library.ENOTFOUND},
		{"by id", func() (library.Member, error) { return db.FindMemberByID(ctx, alice) }, ""},
		{"by missing id", func() (library.Member, error) { return db.FindMemberByID(ctx, 999999) }, library.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.find()
			checkCode(t, err, tt.code)
			if err == nil && (m.ID != alice || m.Email != "alice@example.com") {
				t.Errorf("got %+v, want alice", m)
			}
		})
	}
}

func testAPIKeys(t *testing.T, be Backend) {
	ctx := context.Background()
	db := be.fresh(t)
	alice, bob := memberID(t, db, "alice@example.com"), memberID(t, db, "bob@example.com")
	key := library.APIKey{ID: "key-1", MemberID: alice, Hash: bytes.Repeat([]byte{7}, 32), CreatedAt: time.Now().UTC()}

	create := []struct {
		name string
		key  library.APIKey
		code string
	}{
		{"new", key, ""},
		{"taken id", key, library.ECONFLICT},
		{"missing member", library.APIKey{ID: "key-2", MemberID: 999999, Hash: []byte{1}}, library.ENOTFOUND},
		{"no id", library.APIKey{MemberID: alice, Hash: []byte{1}}, library.EINVALID},
		{"no hash", library.APIKey{ID: "key-3", MemberID: alice}, library.EINVALID},
	}
	for _, tt := range create {
		t.Run("create "+tt.name, func(t *testing.T) {
			checkCode(t, db.CreateAPIKey(ctx, tt.key), tt.code)
		})
	}

	gotKey, gotMember, err := db.FindAPIKey(ctx, key.ID)
	if err != nil {
		t.Fatalf("FindAPIKey: %v", err)
	}
	if gotKey.ID != key.ID || gotKey.MemberID != key.MemberID || !bytes.Equal(gotKey.Hash, key.Hash) {
		t.Errorf("key: got %+v, want %+v", gotKey, key)
	}
	// What a request's identity needs, and nothing more.
	want := library.Member{ID: alice, Email: "alice@example.com", Name: "Alice Liddell", Role: library.RoleMember}
	if gotMember != want {
		t.Errorf("member: got %+v, want %+v", gotMember, want)
	}
	_, _, err = db.FindAPIKey(ctx, "no-such-key")
	checkCode(t, err, library.ENOTFOUND)

	revoke := []struct {
		name   string
		member int64
		id     string
		code   string
	}{
		{"someone else's", bob, key.ID, library.EFORBIDDEN},
		{"missing", alice, "no-such-key", library.ENOTFOUND},
		{"own", alice, key.ID, ""},
		{"already revoked", alice, key.ID, library.ENOTFOUND},
	}
	for _, tt := range revoke {
		t.Run("revoke "+tt.name, func(t *testing.T) {
			checkCode(t, db.RevokeAPIKey(ctx, tt.member, tt.id), tt.code)
		})
	}
	_, _, err = db.FindAPIKey(ctx, key.ID)
	checkCode(t, err, library.ENOTFOUND)
}
