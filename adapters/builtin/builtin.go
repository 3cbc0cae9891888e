// Package builtin links every adapter that ships with omnigate into the
// binary: each adapter registers itself in its package's init, and
// cmd/omnigate imports this package for those side effects.
package builtin

import (
	_ "github.com/omnigate/omnigate/adapters/email"
	_ "github.com/omnigate/omnigate/adapters/slack"
	_ "github.com/omnigate/omnigate/adapters/sms"
	_ "github.com/omnigate/omnigate/adapters/telegram"
	_ "github.com/omnigate/omnigate/adapters/web"
)
