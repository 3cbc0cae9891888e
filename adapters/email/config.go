package email

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core"
)

// Connection security of the IMAP and SMTP connections.
const (
	// SecurityTLS is implicit TLS from the first byte (IMAP 993, SMTP 465).
	SecurityTLS = "tls"
	// SecurityStartTLS upgrades a plain connection with STARTTLS (IMAP 143,
	// SMTP submission 587) and refuses to go on without it.
	SecurityStartTLS = "starttls"
	// SecurityNone is an unencrypted connection: tests and a server on the
	// same host only.
	SecurityNone = "none"
)

// How the mailbox logs in (Config.Auth).
const (
	// AuthPassword logs in with imap.password and smtp.password (IMAP LOGIN,
	// SMTP AUTH PLAIN or LOGIN).
	AuthPassword = "password"
	// AuthOAuth2 logs in with an OAuth 2.0 access token (SASL XOAUTH2 or
	// OAUTHBEARER), refreshed from oauth2.refresh_token.
	AuthOAuth2 = "oauth2"
)

// Initial scans: what is processed of a mailbox seen for the first time, or
// whose UIDVALIDITY changed.
const (
	// ScanUnseen processes the messages not flagged \Seen, then everything new.
	ScanUnseen = "unseen"
	// ScanAll processes every message in the mailbox.
	ScanAll = "all"
	// ScanNone processes only messages that arrive from now on.
	ScanNone = "none"
)

// Defaults of Config.
const (
	DefaultMailbox               = "INBOX"
	DefaultPollInterval          = time.Minute
	DefaultTimeout               = 30 * time.Second
	DefaultMaxMessageBytes       = 25 << 20
	DefaultInlineAttachmentBytes = 256 << 10
	DefaultInlineTotalBytes      = 512 << 10
	DefaultFetchAttachmentBytes  = 10 << 20
)

// maxInlineTotal keeps the data: URLs (base64, 4/3 of the bytes) well inside
// core.MaxEnvelopeBytes.
const maxInlineTotal = 640 << 10

// Config is the section channels.email: one support mailbox, read over IMAP
// and answered over SMTP.
type Config struct {
	Address         string        `yaml:"address" doc:"The support address, e.g. support@example.com: the From of every reply and the recipient of inbound mail. Required."`
	Name            string        `yaml:"name" doc:"Display name on replies, e.g. \"Example Support\"."`
	Domain          string        `yaml:"domain" default:"the domain of address" doc:"Domain of the Message-IDs of replies (<envelope-id@domain>). Default: the domain of address."`
	ReplyToken      bool          `yaml:"reply_token" doc:"Set Reply-To on replies to <local>+<token>@<domain of address> (e.g. support+01jh...@example.com), the token naming the reply, which the pipeline knows the conversation of: a customer's answer links to its conversation even from a client that drops In-Reply-To and References. The mail server must deliver plus-addressed mail to the mailbox (Gmail, Microsoft 365 and Postfix with recipient_delimiter = + do)."`
	VERP            *bool         `yaml:"verp" default:"reply_token" doc:"Send each reply with the return path (MAIL FROM, where bounces go) <local>+<token>@<domain of address>, the token naming the reply (VERP), so that a bounce finds its reply even when it returns nothing of it. The mail server must deliver plus-addressed mail to the mailbox, or bounces are lost: hence the default, reply_token. A submission server that refuses the plus address gets address instead (logged once)."`
	ListIDs         []string      `yaml:"list_ids" doc:"List-Id values whose mail is customer mail all the same, e.g. support.example.com when the address is a Google Group that forwards to the mailbox. Other mailing-list mail is dropped."`
	Auth            string        `yaml:"auth" doc:"How the mailbox logs in over IMAP and SMTP: password (imap.password, smtp.password) or oauth2 (XOAUTH2 or OAUTHBEARER with a token from oauth2, for Microsoft 365 and Google Workspace; run omnigate email login once to get the refresh token)."`
	OAuth2          OAuth2Config  `yaml:"oauth2" doc:"The OAuth 2.0 client and refresh token, with auth: oauth2."`
	IMAP            IMAPConfig    `yaml:"imap" doc:"Where inbound mail is read. Leave imap.host empty for an outbound-only channel."`
	SMTP            SMTPConfig    `yaml:"smtp" doc:"Where replies are submitted. Leave smtp.host empty for an inbound-only channel."`
	DKIM            DKIMConfig    `yaml:"dkim" doc:"Optional DKIM signing of replies, for when the submission server does not sign itself."`
	Limits          LimitsConfig  `yaml:"limits" doc:"Sizes of what one mail may carry into an envelope."`
	AttachmentHosts []string      `yaml:"attachment_hosts" doc:"Hosts replies may fetch attachment URLs from (host or host:port, *.example.com for subdomains). Empty: any host on the public internet over https; loopback and private addresses are refused unless listed here."`
	Timeout         time.Duration `yaml:"timeout" doc:"Timeout of one network operation: connecting (with the IMAP greeting and TLS handshake), one SMTP submission, one attachment download."`
}

// IMAPConfig is channels.email.imap.
type IMAPConfig struct {
	Host               string        `yaml:"host" doc:"IMAP server host name, e.g. imap.gmail.com or outlook.office365.com."`
	Port               int           `yaml:"port" default:"993 (143 unless security is tls)" doc:"IMAP port. Default: 993 for security tls, 143 otherwise."`
	Security           string        `yaml:"security" doc:"tls (implicit TLS, port 993), starttls (port 143, refused without STARTTLS) or none (unencrypted: tests and localhost only)."`
	Username           string        `yaml:"username" default:"address" doc:"Login name, usually the full address. Default: address."`
	Password           config.Secret `yaml:"password" doc:"Password or app password, with auth: password. Write it as ${env:NAME} or ${file:/path}."`
	Mailbox            string        `yaml:"mailbox" doc:"Mailbox (folder) to read."`
	ProcessedMailbox   string        `yaml:"processed_mailbox" doc:"Mailbox to move processed mail to, e.g. Processed or [Gmail]/All Mail; it must exist. Empty: processed mail stays, flagged \\Seen."`
	Idle               *bool         `yaml:"idle" doc:"Wait for new mail with IDLE when the server offers it; off, or on a server without IDLE, the mailbox is polled every poll_interval."`
	PollInterval       time.Duration `yaml:"poll_interval" doc:"How often the mailbox is checked without IDLE. While idling, it is checked at least every 5 minutes as well."`
	InitialScan        string        `yaml:"initial_scan" doc:"What to process of a mailbox seen for the first time or whose UIDVALIDITY changed: unseen (mail not flagged \\Seen), all, or none (only new mail)."`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify" doc:"Accept any TLS certificate. Only for a test server with a self-signed certificate, never in production."`
}

// SMTPConfig is channels.email.smtp.
type SMTPConfig struct {
	Host               string        `yaml:"host" doc:"SMTP submission server host name, e.g. smtp.gmail.com or smtp.office365.com."`
	Port               int           `yaml:"port" default:"587 (465 for tls, 25 for none)" doc:"SMTP port. Default: 465 for security tls, 587 for starttls, 25 for none."`
	Security           string        `yaml:"security" doc:"starttls (port 587, refused without STARTTLS), tls (implicit TLS, port 465) or none (unencrypted: tests and localhost only)."`
	Username           string        `yaml:"username" default:"imap.username" doc:"Login name for AUTH PLAIN or LOGIN (with auth: oauth2, the user of the token). Default: imap.username. Empty together with password: no AUTH (a relay that trusts the host)."`
	Password           config.Secret `yaml:"password" default:"imap.password" doc:"Password or app password. Default: imap.password."`
	HeloName           string        `yaml:"helo_name" default:"domain" doc:"Name sent in EHLO. Default: domain."`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify" doc:"Accept any TLS certificate. Only for a test server with a self-signed certificate, never in production."`
}

// DKIMConfig is channels.email.dkim.
type DKIMConfig struct {
	Selector   string        `yaml:"selector" doc:"DKIM selector: the public key is published at <selector>._domainkey.<domain>. Setting it turns signing on."`
	Domain     string        `yaml:"domain" default:"domain" doc:"Signing domain (d=). Default: domain."`
	PrivateKey config.Secret `yaml:"private_key" doc:"PEM private key (RSA, PKCS#1 or PKCS#8, or Ed25519), e.g. ${file:/run/secrets/dkim.pem}."`
}

// LimitsConfig is channels.email.limits.
type LimitsConfig struct {
	MaxMessageBytes       int64 `yaml:"max_message_bytes" doc:"Largest mail read in full, in bytes; of a larger one only this much is read (meta truncated=true)."`
	InlineAttachmentBytes int64 `yaml:"inline_attachment_bytes" doc:"Largest attachment put into the envelope itself, as a data: URL. Larger ones are listed with name, type and size (meta attachments_omitted) and stay in the mailbox."`
	InlineTotalBytes      int64 `yaml:"inline_total_bytes" doc:"Most attachment bytes one envelope carries as data: URLs, at most 655360 (the envelope's 1 MiB limit)."`
	FetchAttachmentBytes  int64 `yaml:"fetch_attachment_bytes" doc:"Largest attachment a reply downloads from its URL."`
}

// SetDefaults fills the defaults.
func (c *Config) SetDefaults() {
	c.Address = strings.TrimSpace(c.Address)
	if c.Auth == "" {
		c.Auth = AuthPassword
	}
	if c.Auth == AuthOAuth2 {
		c.OAuth2.setDefaults()
	}
	if c.Domain == "" {
		if _, d, ok := strings.Cut(c.Address, "@"); ok {
			c.Domain = d
		}
	}
	c.Domain = strings.ToLower(c.Domain)
	if c.VERP == nil {
		verp := c.ReplyToken
		c.VERP = &verp
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	for i, id := range c.ListIDs {
		c.ListIDs[i] = strings.ToLower(strings.Trim(strings.TrimSpace(id), "<>"))
	}

	im := &c.IMAP
	if im.Security == "" {
		im.Security = SecurityTLS
	}
	if im.Port == 0 {
		im.Port = 143
		if im.Security == SecurityTLS {
			im.Port = 993
		}
	}
	if im.Username == "" {
		im.Username = c.Address
	}
	if im.Mailbox == "" {
		im.Mailbox = DefaultMailbox
	}
	if im.Idle == nil {
		on := true
		im.Idle = &on
	}
	if im.PollInterval == 0 {
		im.PollInterval = DefaultPollInterval
	}
	if im.InitialScan == "" {
		im.InitialScan = ScanUnseen
	}

	sm := &c.SMTP
	if sm.Security == "" {
		sm.Security = SecurityStartTLS
	}
	if sm.Port == 0 {
		switch sm.Security {
		case SecurityTLS:
			sm.Port = 465
		case SecurityNone:
			sm.Port = 25
		default:
			sm.Port = 587
		}
	}
	if sm.Username == "" && sm.Password == "" {
		sm.Username, sm.Password = im.Username, im.Password
	}
	if sm.HeloName == "" {
		sm.HeloName = c.Domain
	}
	if c.DKIM.Domain == "" {
		c.DKIM.Domain = c.Domain
	}

	l := &c.Limits
	if l.MaxMessageBytes == 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.InlineAttachmentBytes == 0 {
		l.InlineAttachmentBytes = DefaultInlineAttachmentBytes
	}
	if l.InlineTotalBytes == 0 {
		l.InlineTotalBytes = DefaultInlineTotalBytes
	}
	if l.FetchAttachmentBytes == 0 {
		l.FetchAttachmentBytes = DefaultFetchAttachmentBytes
	}
}

var (
	domainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$|^localhost$`)
	hostRE   = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$`)
	// selectorRE is a DKIM selector: one or more DNS labels.
	selectorRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
)

// Validate reports every problem of the section.
func (c *Config) Validate() error {
	var p config.Problems
	switch a, err := mail.ParseAddress(c.Address); {
	case c.Address == "":
		p.Add("address", "required")
	case err != nil || a.Address != c.Address || a.Name != "":
		p.Add("address", "must be a bare address like support@example.com, got %q", c.Address)
	case strings.Contains(strings.SplitN(c.Address, "@", 2)[0], "+"):
		p.Add("address", "must not be plus-addressed itself; reply_token adds +<token>")
	}
	if !domainRE.MatchString(c.Domain) {
		p.Add("domain", "must be a domain name like example.com, got %q", c.Domain)
	}
	if c.Timeout <= 0 {
		p.Add("timeout", "must be a positive duration, got %s", c.Timeout)
	}
	if c.IMAP.Host == "" && c.SMTP.Host == "" {
		p.Add("imap.host", "required unless smtp.host is set (an outbound-only channel)")
	}
	oauth := false
	switch c.Auth {
	case AuthPassword:
	case AuthOAuth2:
		oauth = true
		c.OAuth2.validate(&p)
	default:
		p.Add("auth", "must be password or oauth2, got %q", c.Auth)
	}
	if c.IMAP.Host != "" {
		c.IMAP.validate(&p, oauth)
	}
	if c.SMTP.Host != "" {
		c.SMTP.validate(&p, oauth)
	}
	if c.DKIM.Selector != "" || c.DKIM.PrivateKey != "" {
		if !selectorRE.MatchString(c.DKIM.Selector) {
			p.Add("dkim.selector", "must be a DNS label like mail2025, got %q", c.DKIM.Selector)
		}
		if !domainRE.MatchString(c.DKIM.Domain) {
			p.Add("dkim.domain", "must be a domain name, got %q", c.DKIM.Domain)
		}
		if _, err := parsePrivateKey(c.DKIM.PrivateKey.Value()); err != nil {
			p.Add("dkim.private_key", "%v", err)
		}
	}
	for i, h := range c.AttachmentHosts {
		if !hostRE.MatchString(h) {
			p.Add(fmt.Sprintf("attachment_hosts[%d]", i), "must be a lower-case host like files.example.com, *.example.com or 127.0.0.1:8080, got %q", h)
		}
	}
	l := c.Limits
	if l.MaxMessageBytes < 64<<10 {
		p.Add("limits.max_message_bytes", "must be at least 65536, got %d", l.MaxMessageBytes)
	}
	if l.InlineAttachmentBytes < 0 {
		p.Add("limits.inline_attachment_bytes", "must not be negative, got %d", l.InlineAttachmentBytes)
	}
	if l.InlineTotalBytes < 0 || l.InlineTotalBytes > maxInlineTotal {
		p.Add("limits.inline_total_bytes", "must be between 0 and %d, got %d", maxInlineTotal, l.InlineTotalBytes)
	}
	if l.FetchAttachmentBytes <= 0 {
		p.Add("limits.fetch_attachment_bytes", "must be positive, got %d", l.FetchAttachmentBytes)
	}
	return p.Err()
}

func (c *IMAPConfig) validate(p *config.Problems, oauth bool) {
	checkSecurity(p, "imap.security", c.Security)
	if strings.ContainsAny(c.Host, ":/ ") {
		p.Add("imap.host", "must be a host name without port or scheme, got %q", c.Host)
	}
	if c.Port <= 0 || c.Port > 65535 {
		p.Add("imap.port", "must be between 1 and 65535, got %d", c.Port)
	}
	if c.Username == "" {
		p.Add("imap.username", "required")
	}
	switch {
	case c.Password == "" && !oauth:
		p.Add("imap.password", "required (or auth: oauth2)")
	case c.Password != "" && oauth:
		p.Add("imap.password", "not used with auth: oauth2: remove it (the token comes from oauth2.refresh_token)")
	}
	if c.ProcessedMailbox != "" && c.ProcessedMailbox == c.Mailbox {
		p.Add("imap.processed_mailbox", "must differ from imap.mailbox")
	}
	if c.PollInterval < time.Second {
		p.Add("imap.poll_interval", "must be at least 1s, got %s", c.PollInterval)
	}
	switch c.InitialScan {
	case ScanUnseen, ScanAll, ScanNone:
	default:
		p.Add("imap.initial_scan", "must be unseen, all or none, got %q", c.InitialScan)
	}
}

func (c *SMTPConfig) validate(p *config.Problems, oauth bool) {
	checkSecurity(p, "smtp.security", c.Security)
	if strings.ContainsAny(c.Host, ":/ ") {
		p.Add("smtp.host", "must be a host name without port or scheme, got %q", c.Host)
	}
	if c.Port <= 0 || c.Port > 65535 {
		p.Add("smtp.port", "must be between 1 and 65535, got %d", c.Port)
	}
	switch {
	case oauth && c.Password != "":
		p.Add("smtp.password", "not used with auth: oauth2: remove it (the token comes from oauth2.refresh_token)")
	case !oauth && (c.Username == "") != (c.Password == ""):
		p.Add("smtp.password", "set smtp.username and smtp.password together (or neither, for a relay without AUTH)")
	}
	if strings.ContainsAny(c.HeloName, " \r\n") {
		p.Add("smtp.helo_name", "must be a host name, got %q", c.HeloName)
	}
}

func checkSecurity(p *config.Problems, path, v string) {
	switch v {
	case SecurityTLS, SecurityStartTLS, SecurityNone:
	default:
		p.Add(path, "must be tls, starttls or none, got %q", v)
	}
}

// parsePrivateKey reads a PEM DKIM key: RSA (PKCS#1 or PKCS#8) or Ed25519.
func parsePrivateKey(s string) (crypto.Signer, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("required when dkim.selector is set")
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not a PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not an RSA or Ed25519 private key: %v", err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 1024 {
			return nil, fmt.Errorf("RSA key of %d bits, want at least 1024 (2048 recommended)", k.N.BitLen())
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", k)
}

// identity is the email identity of address: "email:" and the address
// lower-cased.
func identity(address string) core.Identity {
	return core.NewIdentity(Name, strings.ToLower(strings.TrimSpace(address)))
}
