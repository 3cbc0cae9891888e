package bus

import (
	"strings"
	"testing"
)

func TestCheckServerVersion(t *testing.T) {
	for _, tc := range []struct {
		found string
		ok    bool
	}{
		{"2.9.25", false}, {"2.10.24", false}, {"", false}, {"junk", false},
		{"2.11.0", true}, {"2.11.3", true}, {"2.15.2", true}, {"v2.12.0-beta.1", true}, {"3.0.0", true},
	} {
		err := checkServerVersion(tc.found)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.found, err, tc.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), MinServerVersion) || !strings.Contains(err.Error(), tc.found)) {
			t.Errorf("%q: %q does not name the version needed and found", tc.found, err)
		}
	}
}
