// Package web is omnigate's website chat and mobile-app channel: the chat
// widget (/widget.js, vanilla JavaScript), and the WebSocket and HTTP API it
// speaks, under /channels/web/. The same code is registered twice: "web" for
// websites and "app" for mobile apps, with their own sites and keys
// (channels.web, channels.app). docs/web-protocol.md is the protocol.
//
// # Visitors
//
// An anonymous visitor gets a visitor token (HMAC-signed by the server) that
// names it, "web:v<ULID>". A site that knows its user sends an identity claim
// its backend signed (SignIdentity); the visitor is then the user's, the same
// on every device, and its messages carry meta verified_user, verified_email
// and verified_phone, on which the pipeline links contacts.
//
// # History, resume and fan-out
//
// Each visitor has a log in the store: what they wrote and what agents
// answered, numbered by a per-visitor seq. A connection's welcome holds the
// latest messages, or every message after resume_after; a session is
// registered before the log is read, so nothing is lost in between. Frames
// reach every session of the visitor: in the process through the hub, on
// other replicas over core NATS (omni.live.<channel>.<visitor>) when
// adapters.Deps.Bus is set.
//
// # Serving it
//
// The adapter mounts its API on adapters.Deps.Routes. WidgetHandler serves the
// widget at /widget.js; DemoHandler serves a page with the widget on it, for
// `omnigate serve` without a config file, when the web channel needs no
// config either: it has one site, "demo", for this server's own pages.
package web
