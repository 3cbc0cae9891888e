package slack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/omnigate/omnigate/adapters"
)

// maxLimiterWait is the longest a call waits for its channel's token bucket;
// beyond it the message is handed back to the bus (RetryAfter) instead of
// holding a consumer.
const maxLimiterWait = 3 * time.Second

// limiter is a token bucket per Slack channel: Slack allows about one
// chat.postMessage per second per channel, with short bursts.
type limiter struct {
	rate  float64
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// wait takes a token of channel's bucket, waiting up to maxLimiterWait; a
// longer wait returns a RetryAfter error.
func (l *limiter) wait(ctx context.Context, channel string) error {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*rate.Limiter{}
	}
	lim := l.m[channel]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(l.rate), l.burst)
		l.m[channel] = lim
	}
	l.mu.Unlock()
	r := lim.Reserve()
	d := r.Delay()
	if d == 0 {
		return nil
	}
	if d > maxLimiterWait {
		r.Cancel()
		return adapters.RetryAfter(fmt.Errorf("slack: channel %s: posting faster than channel_rate", channel), d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// permanentErrors are Web API errors no retry fixes: the message goes to the
// dead-letter queue at once.
var permanentErrors = map[string]bool{
	"channel_not_found":     true,
	"not_in_channel":        true,
	"is_archived":           true,
	"msg_too_long":          true,
	"no_text":               true,
	"invalid_blocks":        true,
	"invalid_blocks_format": true,
	"too_many_attachments":  true,
	"restricted_action":     true,
	"cant_update_message":   true,
	"message_not_found":     true,
	"thread_not_found":      true,
	"missing_scope":         true,
}

// apiError wraps err of Web API method op: Slack's 429 becomes RetryAfter with
// its Retry-After, errors no retry fixes Permanent, anything else a plain
// error (retried with backoff).
func apiError(op string, err error) error {
	if err == nil {
		return nil
	}
	werr := fmt.Errorf("slack: %s: %w", op, err)
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
		return adapters.RetryAfter(werr, max(rl.RetryAfter, time.Second))
	}
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok && permanentErrors[se.Err] {
		return adapters.Permanent(werr)
	}
	return werr
}

// slackErr reports whether err is Slack's error code code.
func slackErr(err error, code string) bool {
	se, ok := errors.AsType[slack.SlackErrorResponse](err)
	return ok && se.Err == code
}

// post posts a message to channel (in a thread when the options say so) and
// returns its ts, respecting the channel's rate.
func (a *Adapter) post(ctx context.Context, channel string, opts ...slack.MsgOption) (string, error) {
	if err := a.limits.wait(ctx, channel); err != nil {
		return "", err
	}
	_, ts, err := a.api.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		return "", apiError("chat.postMessage", err)
	}
	return ts, nil
}

// update replaces the message at channel/ts.
func (a *Adapter) update(ctx context.Context, channel, ts string, opts ...slack.MsgOption) error {
	if err := a.limits.wait(ctx, channel); err != nil {
		return err
	}
	if _, _, _, err := a.api.UpdateMessageContext(ctx, channel, ts, opts...); err != nil {
		return apiError("chat.update", err)
	}
	return nil
}

// remove deletes the message at channel/ts; a message already gone is fine.
func (a *Adapter) remove(ctx context.Context, channel, ts string) error {
	if _, _, err := a.api.DeleteMessageContext(ctx, channel, ts); err != nil && !slackErr(err, "message_not_found") {
		return apiError("chat.delete", err)
	}
	return nil
}

// react adds reaction name to the message at channel/ts; one already there is
// fine.
func (a *Adapter) react(ctx context.Context, channel, ts, name string) error {
	if name == "" || name == noReaction {
		return nil
	}
	err := a.api.AddReactionContext(ctx, name, slack.NewRefToMessage(channel, ts))
	if err != nil && !slackErr(err, "already_reacted") && !slackErr(err, "message_not_found") {
		return apiError("reactions.add", err)
	}
	return nil
}

// ephemeral shows text to user only, in channel (and thread, when ts is set).
// It is best effort: failures are logged.
func (a *Adapter) ephemeral(ctx context.Context, channel, user, threadTS, text string) {
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	if _, err := a.api.PostEphemeralContext(ctx, channel, user, opts...); err != nil {
		a.log.Warn("ephemeral message not shown", "err", apiError("chat.postEphemeral", err))
	}
}

// permalink returns the link to the message at channel/ts, or "" when Slack
// cannot give one (logged).
func (a *Adapter) permalink(ctx context.Context, channel, ts string) string {
	link, err := a.api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: channel, Ts: ts})
	if err != nil {
		a.log.Warn("no permalink", "channel", channel, "err", apiError("chat.getPermalink", err))
		return ""
	}
	return link
}

// userCacheTTL is how long a user's name is remembered.
const userCacheTTL = time.Hour

// userCache remembers users' display names.
type userCache struct {
	mu sync.Mutex
	m  map[string]cachedUser
}

type cachedUser struct {
	name   string
	avatar string // the profile picture's URL (72×72)
	at     time.Time
}

// userName returns the display name of Slack user id, or "" when Slack does
// not tell (logged at debug).
func (a *Adapter) userName(ctx context.Context, id string) string { return a.user(ctx, id).name }

// user returns the name and picture of Slack user id, empty when Slack does
// not tell (logged at debug).
func (a *Adapter) user(ctx context.Context, id string) cachedUser {
	c := &a.users
	c.mu.Lock()
	if u, ok := c.m[id]; ok && time.Since(u.at) < userCacheTTL {
		c.mu.Unlock()
		return u
	}
	c.mu.Unlock()
	u, err := a.api.GetUserInfoContext(ctx, id)
	if err != nil {
		a.log.Debug("users.info", "user", id, "err", err)
		return cachedUser{}
	}
	name := u.Profile.DisplayName
	if name == "" {
		name = u.RealName
	}
	if name == "" {
		name = u.Name
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]cachedUser{}
	}
	if len(c.m) > 10000 {
		clear(c.m)
	}
	cu := cachedUser{name: name, avatar: u.Profile.Image72, at: time.Now()}
	c.m[id] = cu
	c.mu.Unlock()
	return cu
}

// slackThread posts in thread th.
func slackThread(th thread) slack.MsgOption { return slack.MsgOptionTS(th.ts) }

// slackText is a message's mrkdwn text, links not unfurled.
func slackText(text string) slack.MsgOption {
	return slack.MsgOptionCompose(slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl())
}
