package adapters

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/store"
)

// ErrUnknownAdapter is returned by Build for a name no adapter registered.
var ErrUnknownAdapter = errors.New("unknown adapter")

// Kind tells whether an adapter is a customer channel or an agent desk.
type Kind string

// Adapter kinds.
const (
	// Channel adapters carry customer messages; the runtime feeds them omni.out.<name>.
	Channel Kind = "channel"
	// Desk adapters show conversations to agents; the runtime feeds them omni.desk.<name>.
	Desk Kind = "desk"
)

// Factory builds an adapter from its decoded, validated config. It does no I/O.
type Factory[C any] func(cfg C, deps Deps) (Adapter, error)

// Info describes an adapter: what Register is given, and what listings, docs
// and the other components read of a channel instead of hard-coding channel
// names (the desk's labels and icons, the pipeline's phone channels, the
// format a reply is rendered in).
type Info struct {
	// Name is the adapter's (and its channel's) name.
	Name string
	// Kind is Channel or Desk.
	Kind Kind
	// Doc says in one line what it connects.
	Doc string
	// Title is how agents see the channel's name, e.g. "WhatsApp"; default
	// Name with a capital.
	Title string
	// Icon is the emoji a desk shows beside the channel's messages, as a
	// Slack-style :name:; default :speech_balloon:.
	Icon string
	// Address is what the addresses of the channel's identities are.
	Address AddressKind
	// Format is how the channel shows text: replies written on a desk
	// (CommonMark) are rendered in it.
	Format Format
	// Keys are its config keys under channels.<name>; Register fills them.
	Keys []config.Key
}

// AddressKind is what the addresses of a channel's identities are.
type AddressKind string

// Address kinds.
const (
	// AddressPhone is an E.164 number: the same number on every phone channel
	// is the same customer.
	AddressPhone AddressKind = "phone"
	// AddressEmail is an email address.
	AddressEmail AddressKind = "email"
	// AddressChatID is the provider's id of a chat or user (Telegram).
	AddressChatID AddressKind = "chat_id"
	// AddressVisitor is an id the channel gave a visitor (web chat, app).
	AddressVisitor AddressKind = "visitor"
	// AddressUser is a desk's user id (an agent).
	AddressUser AddressKind = "user"
)

// Format is how a channel shows text.
type Format string

// Formats.
const (
	// FormatPlain shows text as written.
	FormatPlain Format = "plain"
	// FormatHTML shows an HTML body beside the plain text (email).
	FormatHTML Format = "html"
	// FormatMarkdownV2 is Telegram's MarkdownV2.
	FormatMarkdownV2 Format = "markdown_v2"
	// FormatWhatsApp is WhatsApp's *bold* _italic_ ~strike~ ```mono```.
	FormatWhatsApp Format = "whatsapp"
	// FormatMrkdwn is Slack's mrkdwn (desks).
	FormatMrkdwn Format = "mrkdwn"
)

// withDefaults fills the Info fields that have one.
func (i Info) withDefaults() Info {
	if i.Title == "" && i.Name != "" {
		i.Title = strings.ToUpper(i.Name[:1]) + i.Name[1:]
	}
	if i.Icon == "" {
		i.Icon = ":speech_balloon:"
	}
	if i.Format == "" {
		i.Format = FormatPlain
	}
	return i
}

type entry struct {
	info Info
	// build decodes the section and runs the factory; warnings are the
	// adapter's (Warner), located.
	build func(file string, node *yaml.Node, deps Deps) (a Adapter, warnings, err error)
}

// Warner is implemented by adapters whose configuration works but leaves out
// something a person should know of, such as a webhook no provider can reach
// without a public URL. Build logs the warnings and Check returns them; both
// call Warnings once, after the factory. Its error is config.Errors (through
// config.Problems) with paths relative to channels.<name>, or nil.
type Warner interface {
	Warnings() error
}

var (
	regMu    sync.RWMutex
	registry = map[string]entry{}
)

// Register makes the adapter info describes available under info.Name, with
// config type C decoded strictly from channels.<name> (plus
// OMNIGATE_CHANNELS_<NAME>_* overrides, C's SetDefaults and Validate). Call it
// from an init function. It panics on a duplicate or invalid name or kind:
// both are programming errors.
func Register[C any](info Info, f Factory[C]) {
	name := info.Name
	if info.Kind != Channel && info.Kind != Desk {
		panic(fmt.Sprintf("adapters: register %q: kind %q is neither channel nor desk", name, info.Kind))
	}
	if !core.ValidChannel(name) {
		panic(fmt.Sprintf("adapters: register %q: not a valid channel name", name))
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("adapters: %q registered twice", name))
	}
	registry[name] = entry{
		info: func() Info {
			i := info.withDefaults()
			i.Keys = config.Keys(new(C), "channels."+name)
			return i
		}(),
		build: func(file string, node *yaml.Node, deps Deps) (Adapter, error, error) {
			var cfg C
			if err := config.DecodeSection(file, node, config.EnvName("channels."+name), &cfg); err != nil {
				return nil, nil, err
			}
			a, err := f(cfg, deps)
			if err != nil {
				return nil, nil, locate(file, node, name, err)
			}
			var warnings error
			if w, ok := a.(Warner); ok {
				warnings = locate(file, node, name, w.Warnings())
			}
			return a, warnings, nil
		},
	}
}

// locate turns a factory's error into config.Errors at channels.<name>: its
// own problems at their keys, any other error at the section.
func locate(file string, node *yaml.Node, name string, err error) error {
	if err == nil {
		return nil
	}
	var errs config.Errors
	var one *config.Error
	if !errors.As(err, &errs) && !errors.As(err, &one) {
		err = &config.Error{Msg: err.Error(), Err: err}
	}
	return config.Locate(file, node, "channels."+name, err)
}

// List returns every registered adapter, sorted by name.
func List() []Info {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]Info, 0, len(registry))
	for _, e := range registry {
		out = append(out, e.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the Info of a registered adapter.
func Lookup(name string) (Info, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	e, ok := registry[name]
	return e.info, ok
}

// Check decodes and validates the config section node of the adapter
// registered as name and runs its factory, as Build does, then drops the
// adapter: for check-config, so that it refuses what serve refuses. Factories
// do no I/O; deps gives what serve would (PublicURL, Queues), and Check fills
// the rest (publisher, store, routes, logger) with ones that are never used.
// Warnings are the adapter's (Warner), located like the problems.
func Check(name, file string, node *yaml.Node, deps Deps) (warnings, err error) {
	regMu.RLock()
	e, ok := registry[name]
	regMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (omnigate adapters lists them)", ErrUnknownAdapter, name)
	}
	if deps.Publisher == nil {
		deps.Publisher = NewPublisher(nil, name)
	}
	if deps.Store == nil {
		deps.Store = store.New(nil, store.Options{})
	}
	if deps.Routes == nil {
		deps.Routes = NewRoutes(http.NewServeMux(), name)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	_, warnings, err = e.build(file, node, deps)
	return warnings, err
}

// Build decodes the config section node (from file, for error positions; nil
// when absent) and builds the adapter registered as name. Config problems,
// the factory's included, come back as config.Errors with their lines; the
// adapter's warnings (Warner) are logged on deps.Logger.
func Build(name, file string, node *yaml.Node, deps Deps) (Adapter, error) {
	regMu.RLock()
	e, ok := registry[name]
	regMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (omnigate adapters lists them)", ErrUnknownAdapter, name)
	}
	a, warnings, err := e.build(file, node, deps)
	if err != nil {
		return nil, err
	}
	var list config.Errors
	if deps.Logger != nil && errors.As(warnings, &list) {
		for _, w := range list {
			deps.Logger.Warn("config: "+w.Error(), "key", w.Path)
		}
	}
	return a, nil
}
