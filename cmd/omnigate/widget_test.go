package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// TestWidget_AvailabilityAndAck runs omnigate with the web chat, a Slack desk
// and a queue with one agent: the widget's config says online with the
// queue's expected wait, as routing computed it, and a visitor nobody
// answers gets routing's acknowledgement with that wait in the widget.
func TestWidget_AvailabilityAndAck(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	g := startLoopWith(t, loopOptions{transport: "http", chs: []string{"web"}, routing: fmt.Sprintf(
		"routing:\n  default_queue: general\n  queues:\n    general: {desk: slack, channel: %s, agents: [\"slack:%s\"], ack_after: 1s, default_wait: 20m}\n",
		slackfake.ChannelSupport, slackfake.AgentUser)})

	var av struct {
		Online        bool   `json:"online"`
		Reason        string `json:"reason"`
		ExpectedWaitS int64  `json:"expected_wait_s"`
	}
	bustest.Eventually(t, 20*time.Second, func() error {
		req, _ := http.NewRequest(http.MethodGet, g.base+"/channels/web/widget/config?site=shop", nil)
		req.Header.Set("Origin", g.base)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var c struct {
			Availability json.RawMessage `json:"availability"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
			return err
		}
		if err := json.Unmarshal(c.Availability, &av); err != nil {
			return err
		}
		if !av.Online {
			return fmt.Errorf("widget availability %s", c.Availability)
		}
		return nil
	})
	if av.Reason != "online" || av.ExpectedWaitS != 1200 {
		t.Errorf("availability %+v, want online with the queue's 20m default wait", av)
	}

	cust := g.customer(t, "web")
	cust.write(t, "Is anyone there?")
	bustest.Eventually(t, 20*time.Second, func() error {
		for _, r := range cust.received() {
			if strings.Contains(r, "20 minutes") {
				return nil
			}
		}
		return errors.New("no acknowledgement with the expected wait yet")
	})
}
