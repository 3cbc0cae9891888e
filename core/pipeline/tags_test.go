package pipeline_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/pipeline"
)

// TestPipeline_TagCommands: a desk tags and untags a conversation by
// command; the pipeline keeps the tags on the conversation (normalized,
// sorted) and answers each command with conversation.tagged.
func TestPipeline_TagCommands(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{})
	const ann = core.Identity("web:v-ann")
	e.publishIn(customer(ann, "hi"))
	conv := e.desk(1)[0].ConversationID

	tag := deskEvent(event.ConversationTag, conv)
	tag.Meta = map[string]string{event.MetaTags: " #Refund, vip,refund"}
	e.publishDesk(tag)
	ev := e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ConversationTagged), 1)[0]
	if ev.ReplyTo != tag.ID || ev.Meta[event.MetaTags] != "refund,vip" || ev.Meta[event.MetaAdded] != "refund,vip" || ev.From != tag.From {
		t.Fatalf("tagged event %+v", ev)
	}
	if c, err := e.st.Conversation(e.ctx, conv); err != nil || !slices.Equal(c.Tags, []string{"refund", "vip"}) {
		t.Fatalf("conversation tags %v %v", c.Tags, err)
	}

	untag := deskEvent(event.ConversationTag, conv)
	untag.Meta = map[string]string{event.MetaUntags: "vip,unknown", event.MetaTags: "late"}
	e.publishDesk(untag)
	ev = e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ConversationTagged), 2)[1]
	if ev.Meta[event.MetaTags] != "late,refund" || ev.Meta[event.MetaRemoved] != "vip" || ev.Meta[event.MetaAdded] != "late" {
		t.Fatalf("untagged event %v", ev.Meta)
	}
	if c, _ := e.st.Conversation(e.ctx, conv); !slices.Equal(c.Tags, []string{"late", "refund"}) {
		t.Fatalf("conversation tags %v", c.Tags)
	}

	empty := deskEvent(event.ConversationTag, conv)
	e.publishDesk(empty)
	bustest.Eventually(t, 10*time.Second, func() error {
		if n := len(e.deadLetters()); n != 1 {
			return fmt.Errorf("%d dead letters", n)
		}
		return nil
	})
	if dl := e.deadLetterSummary(); !strings.Contains(dl, "without meta tags") {
		t.Errorf("dead letter %s", dl)
	}
}

func TestParseTags(t *testing.T) {
	long := strings.Repeat("x", pipeline.MaxTagBytes+5)
	if got := pipeline.ParseTags("B, a,,#b , " + long); !slices.Equal(got, []string{"a", "b", long[:pipeline.MaxTagBytes]}) {
		t.Errorf("ParseTags = %q", got)
	}
}
