package pipeline_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/pipeline"
)

func TestTranscript_Paging(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{})
	from := core.Identity("telegram:7")
	var want []string
	for i := range 25 {
		want = append(want, fmt.Sprintf("m%02d", i))
		e.publishIn(customer(from, want[i]))
		// Another conversation interleaves on the same stream.
		e.publishIn(customer("telegram:8", "other"))
	}
	e.desk(50)
	conv := e.openOf(e.contactOf(from).ID).ID
	ctx := e.ctx

	var got []string
	var after uint64
	var pages []int
	for {
		page, next, err := pipeline.Transcript(ctx, e.js, conv, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			if next != after {
				t.Errorf("empty page moved next from %d to %d", after, next)
			}
			break
		}
		pages = append(pages, len(page))
		for i, te := range page {
			if te.Seq <= after || (i > 0 && te.Seq <= page[i-1].Seq) || te.Time.IsZero() {
				t.Fatalf("entry seq %d after %d, time %v", te.Seq, after, te.Time)
			}
			if te.Message.ConversationID != conv {
				t.Fatalf("entry of conversation %s", te.Message.ConversationID)
			}
			got = append(got, te.Message.Text)
		}
		if next != page[len(page)-1].Seq {
			t.Fatalf("next = %d, want the last seq %d", next, page[len(page)-1].Seq)
		}
		after = next
	}
	if !slices.Equal(got, want) {
		t.Errorf("transcript = %q, want %q", got, want)
	}
	if !slices.Equal(pages, []int{10, 10, 5}) {
		t.Errorf("page sizes = %v, want [10 10 5]", pages)
	}

	// The default limit takes everything here; an unknown conversation is empty.
	if page, _, err := pipeline.Transcript(ctx, e.js, conv, 0, 0); err != nil || len(page) != 25 {
		t.Errorf("default page = %d entries, %v", len(page), err)
	}
	if page, next, err := pipeline.Transcript(ctx, e.js, core.NewID(), 7, 10); err != nil || len(page) != 0 || next != 7 {
		t.Errorf("unknown conversation = %d entries, next %d, %v", len(page), next, err)
	}
	if _, _, err := pipeline.Transcript(ctx, e.js, "not.a.token", 0, 10); err == nil {
		t.Error("invalid conversation id accepted")
	}
}

// TestTranscript_Undecodable: an entry this build cannot read is reported in its
// place, and paging goes on past it.
func TestTranscript_Undecodable(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{})
	conv := core.NewID()
	good := customer("telegram:9", "readable")
	good.ConversationID = conv
	data, _ := good.Encode()
	e.publishRaw(bus.SubjectConv(conv), []byte(`{"v":2,"id":"x"}`), "a")
	e.publishRaw(bus.SubjectConv(conv), data, "b")
	page, _, err := pipeline.Transcript(e.ctx, e.js, conv, 0, 10)
	if err != nil || len(page) != 2 {
		t.Fatalf("page = %d entries, %v", len(page), err)
	}
	if page[0].Err == nil || page[0].Message != nil || page[1].Err != nil || page[1].Message.Text != "readable" {
		t.Errorf("entries = %+v, %+v", page[0], page[1])
	}
}
