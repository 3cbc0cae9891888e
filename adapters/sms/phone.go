package sms

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nyaruka/phonenumbers"
)

// whatsappPrefix marks a WhatsApp address in Twilio's From and To.
const whatsappPrefix = "whatsapp:"

// maxNumberBytes bounds what Normalize looks at; E.164 numbers have at most 15
// digits, so anything longer is written with a lot of punctuation or is not one.
const maxNumberBytes = 64

// errNotPhone is Normalize's error.
var errNotPhone = errors.New("not a phone number")

// Normalize returns number in E.164 form, e.g. "+15551234567", so that one
// phone has one address on every channel: an sms identity and a whatsapp
// identity of the same phone have the same address and core links them. A
// number without a country code is read as one of region (ISO 3166, e.g. "US").
// Spaces, dots, dashes and parentheses are allowed; letters (vanity numbers,
// extensions) are not. Numbers of a possible length for their country are
// accepted even when the metadata does not know their range yet, so a new
// operator's numbers are not refused.
func Normalize(number, region string) (string, error) {
	key := region + " " + number
	if v, ok := normalized.Load(key); ok {
		return v.(string), nil
	}
	e164, err := normalize(number, region)
	if err == nil {
		if normalizedCount.Add(1) > maxNormalized {
			normalized.Clear() // a rare reset keeps the memo bounded
			normalizedCount.Store(1)
		}
		normalized.Store(key, e164)
	}
	return e164, err
}

// normalized memoizes Normalize's successes: parsing a number costs tens of
// microseconds of regular expressions, and customers write from the same
// numbers again and again. maxNormalized bounds it.
var (
	normalized      sync.Map
	normalizedCount atomic.Int64
)

const maxNormalized = 100_000

func normalize(number, region string) (string, error) {
	n := strings.TrimSpace(number)
	if n == "" || len(n) > maxNumberBytes {
		return "", errNotPhone
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= '0' && c <= '9' || c == '+' && i == 0 || strings.IndexByte(" ()-./", c) >= 0) {
			return "", errNotPhone
		}
	}
	p, err := parsePhone(n, region)
	if err != nil || !phonenumbers.IsPossibleNumber(p) {
		return "", errNotPhone
	}
	e164 := phonenumbers.Format(p, phonenumbers.E164)
	if len(e164) < 4 || e164[0] != '+' {
		return "", errNotPhone
	}
	// The E.164 form must read back as itself, so that Normalize is
	// idempotent: odd national forms ("0000000" in AX) can lose a digit.
	if q, err := parsePhone(e164, "ZZ"); err != nil || !phonenumbers.IsPossibleNumber(q) || phonenumbers.Format(q, phonenumbers.E164) != e164 {
		return "", errNotPhone
	}
	return e164, nil
}

// parsePhone is phonenumbers.Parse, which must not take the process down on
// input it did not expect.
func parsePhone(n, region string) (p *phonenumbers.PhoneNumber, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("phonenumbers: %v", r)
		}
	}()
	return phonenumbers.Parse(n, region)
}

// partyAddress returns the address of a customer's From (inbound) or To
// (status callback) as Twilio writes it: "whatsapp:+E164" on the whatsapp
// channel, "+E164" or a short code on sms.
func partyAddress(channel, raw, region string) (string, error) {
	rest, isWhatsApp := cutFold(raw, whatsappPrefix)
	switch {
	case channel == channelWhatsApp && !isWhatsApp:
		return "", fmt.Errorf("not a whatsapp: address; point only WhatsApp senders at /channels/%s/", channelWhatsApp)
	case channel != channelWhatsApp && isWhatsApp:
		return "", fmt.Errorf("a whatsapp: address on the %s channel; point WhatsApp senders at /channels/%s/", channel, channelWhatsApp)
	}
	if e164, err := Normalize(rest, region); err == nil {
		return e164, nil
	}
	if channel != channelWhatsApp && shortCodePattern.MatchString(rest) {
		return rest, nil
	}
	return "", errNotPhone
}

// parseSender checks the configured sender of channel and returns it as Twilio
// wants it in From: "whatsapp:+E164", "+E164", a short code or a sender ID.
func parseSender(channel, from, region string) (string, error) {
	rest, isWhatsApp := cutFold(from, whatsappPrefix)
	if channel == channelWhatsApp {
		e164, err := Normalize(rest, region)
		if err != nil {
			return "", errors.New("must be the WhatsApp sender's number in E.164, like +15551234567")
		}
		return whatsappPrefix + e164, nil
	}
	if isWhatsApp {
		return "", errors.New("a whatsapp: sender belongs in channels.whatsapp")
	}
	if e164, err := Normalize(from, region); err == nil {
		return e164, nil
	}
	if shortCodePattern.MatchString(from) || senderIDPattern.MatchString(from) && strings.ContainsFunc(from, isLetter) {
		return from, nil
	}
	return "", errors.New("must be a number in E.164 like +15551234567, a short code or an alphanumeric sender ID of at most 11 characters")
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

// cutFold is strings.CutPrefix ignoring ASCII case.
func cutFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
