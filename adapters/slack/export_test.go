package slack

// Test hooks for the payload parsers.
var (
	ParseEvents      = func(raw []byte) error { _, err := parseEvents(raw); return err }
	ParseInteraction = func(raw []byte) error { _, err := parseInteraction(raw); return err }
	ParseCommand     = func(raw []byte) error { _, err := parseCommand(raw); return err }
	ParseSocketFrame = func(raw []byte) (typ, reason string, err error) {
		f, err := parseSocketFrame(raw)
		return f.Type, f.Reason, err
	}
	ErrMalformed   = errMalformed
	SplitText      = splitText
	ParsePermalink = parsePermalink
)

// EditableChannel declares, for a test, that channel applies edit_of and
// delete_of, as a channel will once it can, until the test ends.
func EditableChannel(t interface{ Cleanup(func()) }, channel string) {
	editChannels[channel] = true
	t.Cleanup(func() { delete(editChannels, channel) })
}
