package slack_test

// The desk shows each channel by its adapter's Info (title, icon): the
// tests register every built-in channel, as serve does.
import _ "github.com/omnigate/omnigate/adapters/builtin"
