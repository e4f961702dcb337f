package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// credentialHelper is docker-credential-testhelper: it keeps each
// server's credentials in a file of its own under $HELPER_STORE, speaking
// the docker-credential-helpers protocol (store, get, erase, list); the
// server broken.example fails as a locked keychain would.
const credentialHelper = `#!/bin/sh
set -e
key() { printf '%s' "$1" | base64 -w0 | tr '/+' '_-'; }
case "$1" in
store)
	in=$(cat)
	url=$(printf '%s' "$in" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
	printf '%s' "$in" > "$HELPER_STORE/$(key "$url")" ;;
get|erase)
	url=$(cat)
	f="$HELPER_STORE/$(key "$url")"
	if [ "$url" = broken.example ]; then echo "the keychain is locked"; exit 1; fi
	if [ ! -f "$f" ]; then echo "credentials not found in native keychain"; exit 1; fi
	if [ "$1" = get ]; then cat "$f"; else rm "$f"; fi ;;
list)
	printf '{'; sep=
	for f in "$HELPER_STORE"/*; do
		[ -f "$f" ] || continue
		url=$(sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p' "$f")
		user=$(sed -n 's/.*"Username":"\([^"]*\)".*/\1/p' "$f")
		printf '%s"%s":"%s"' "$sep" "$url" "$user"; sep=,
	done
	printf '}\n' ;;
*) echo "unknown action"; exit 1 ;;
esac
`

// CredentialHelper writes docker-credential-testhelper into a new
// directory, bin (put it first on PATH), and makes its store, another new
// directory (give it as $HELPER_STORE).
func CredentialHelper(t testing.TB) (bin, store string) {
	t.Helper()
	bin, store = t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-testhelper"), []byte(credentialHelper), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, store
}
