package slack_test

import (
	"testing"

	"github.com/omnigate/omnigate/adapters/slack/slackfake"
)

// The fake Slack of these tests is slackfake's; these short names keep the
// tests readable.
type (
	fakeSlack = slackfake.Server
	call      = slackfake.Call
)

// Ids and credentials of the fake workspace.
const (
	botUser    = slackfake.BotUser
	botID      = slackfake.BotID
	agentUser  = slackfake.AgentUser
	agent2User = slackfake.Agent2User
	chSupport  = slackfake.ChannelSupport
	chBilling  = slackfake.ChannelBilling
	testBotTok = slackfake.BotToken
	testAppTok = slackfake.AppToken
	testSecret = slackfake.SigningSecret
)

func newFakeSlack(t *testing.T) *fakeSlack { return slackfake.New(t) }
