package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/api"
)

// ticketRoutes are the routes the tickets service mounts under /api/
// (tickets.Service.Handler).
var ticketRoutes = []string{
	"GET /api/tickets", "POST /api/tickets", "GET /api/tickets/{number}", "PATCH /api/tickets/{number}",
	"POST /api/tickets/hooks/webhook", "POST /api/tickets/hooks/zendesk",
}

// spec is docs/openapi.yaml, decoded, with its schemas compiled on demand.
type spec struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("openapi: %q, want 3.1.x", v)
	}
	js, _ := json.Marshal(doc)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("openapi.json", inst); err != nil {
		t.Fatal(err)
	}
	return &spec{doc: doc, compiler: c}
}

// operations are the documented "METHOD path" pairs.
func (s *spec) operations() []string {
	var out []string
	for path, item := range s.doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			if m := strings.ToUpper(method); slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, m) {
				out = append(out, m+" "+path)
			}
		}
	}
	slices.Sort(out)
	return out
}

// pointer escapes a JSON pointer token.
func pointer(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// check validates an answer of operation op ("GET /api/v1/queues") with
// status and body against the spec: the status must be documented, and a
// JSON body must match its schema.
func (s *spec) check(t *testing.T, op string, status int, contentType string, body []byte) {
	t.Helper()
	method, path, _ := strings.Cut(op, " ")
	item, _ := s.doc["paths"].(map[string]any)[path].(map[string]any)
	o, _ := item[strings.ToLower(method)].(map[string]any)
	if o == nil {
		t.Errorf("%s is not documented", op)
		return
	}
	code := strconv.Itoa(status)
	resp, _ := o["responses"].(map[string]any)[code].(map[string]any)
	if resp == nil {
		t.Errorf("%s answered %d, which the spec does not document: %s", op, status, body)
		return
	}
	ptr := "openapi.json#/paths/" + pointer(path) + "/" + strings.ToLower(method) + "/responses/" + code
	if ref, ok := resp["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/responses/")
		resp = s.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
		ptr = "openapi.json#/components/responses/" + pointer(name)
	}
	content, _ := resp["content"].(map[string]any)
	if content == nil {
		return // no body documented
	}
	mt, _, _ := strings.Cut(contentType, ";")
	if _, ok := content[mt]; !ok {
		t.Errorf("%s %d: Content-Type %q, the spec documents %v", op, status, contentType, content)
		return
	}
	if mt != "application/json" {
		return
	}
	sch, err := s.compiler.Compile(ptr + "/content/application~1json/schema")
	if err != nil {
		t.Fatalf("%s %d: compile schema: %v", op, status, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s %d: not JSON: %v: %s", op, status, err, body)
		return
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("%s %d: the answer does not match the spec: %v\n%s", op, status, err, body)
	}
}

// TestAPI_OpenAPI calls every operation docs/openapi.yaml documents on a live
// omnigate with a conversation that came in through SMS and WhatsApp,
// validates every answer against the documented status and schema, and fails
// on a live route the spec leaves out.
func TestAPI_OpenAPI(t *testing.T) {
	s := loadSpec(t)
	live := append(slices.Clone(api.Routes), ticketRoutes...)
	ops := s.operations()
	for _, r := range live {
		if !slices.Contains(ops, r) {
			t.Errorf("live route %s is not in docs/openapi.yaml", r)
		}
	}
	g := startAPILoop(t)
	var contact struct{ Contacts []struct{ ID string } }
	g.getJSON(t, "/api/v1/contacts?identity="+url.QueryEscape("sms:+14155550100"), &contact)
	if len(contact.Contacts) != 1 {
		t.Fatalf("contacts by identity: %+v", contact)
	}
	contactID := contact.Contacts[0].ID
	unknown := "01JD0000000000000000000000"
	cardPath := strings.TrimPrefix(g.card, g.base)

	type call struct {
		op, path, token, body string
		want                  int
	}
	calls := []call{
		{"GET /api/v1/conversations", "/api/v1/conversations", apiToken, "", 200},
		{"GET /api/v1/conversations", "/api/v1/conversations?status=open&channel=sms&queue=general&contact=" + contactID + "&updated_since=2020-01-01T00:00:00Z&limit=5", apiToken, "", 200},
		{"GET /api/v1/conversations", "/api/v1/conversations?status=pending", apiToken, "", 400},
		{"GET /api/v1/conversations", "/api/v1/conversations?next=bm90LWEtY3Vyc29y", apiToken, "", 400},
		{"GET /api/v1/conversations", "/api/v1/conversations", "", "", 401},
		{"GET /api/v1/conversations", "/api/v1/conversations", "wrong-token", "", 401},
		{"GET /api/v1/conversations/{id}", "/api/v1/conversations/" + g.conv, apiToken, "", 200},
		{"GET /api/v1/conversations/{id}", "/api/v1/conversations/" + unknown, apiToken, "", 404},
		{"GET /api/v1/conversations/{id}/transcript", "/api/v1/conversations/" + g.conv + "/transcript?limit=2", apiToken, "", 200},
		{"GET /api/v1/conversations/{id}/transcript", "/api/v1/conversations/" + unknown + "/transcript", apiToken, "", 404},
		{"GET /api/v1/conversations/{id}/transcript", "/api/v1/conversations/" + g.conv + "/transcript?limit=0", apiToken, "", 400},
		{"GET /api/v1/contacts", "/api/v1/contacts?identity=sms:+14155550100", apiToken, "", 200}, // + unencoded
		{"GET /api/v1/contacts", "/api/v1/contacts?identity=telegram:1", apiToken, "", 200},
		{"GET /api/v1/contacts", "/api/v1/contacts", apiToken, "", 400},
		{"GET /api/v1/contacts/{id}", "/api/v1/contacts/" + contactID, apiToken, "", 200},
		{"GET /api/v1/contacts/{id}", "/api/v1/contacts/" + unknown, apiToken, "", 404},
		{"GET /api/v1/queues", "/api/v1/queues", apiToken, "", 200},
		{"GET /api/v1/queues", "/api/v1/queues", "", "", 401},
		{"GET /conversations/{id}", cardPath, "", "", 200},
		{"GET /conversations/{id}", strings.Replace(cardPath, "sig=", "sig=x", 1), "", "", 403},
		// The tickets API takes http.admin_token: tickets.admin_token is unset here.
		{"POST /api/tickets", "/api/tickets", apiToken, `{"subject":"Refund for 7781","conversation_id":"` + g.conv + `"}`, 201},
		{"POST /api/tickets", "/api/tickets", apiToken, `{"subject":`, 400},
		{"GET /api/tickets", "/api/tickets", apiToken, "", 200},
		{"GET /api/tickets", "/api/tickets", "", "", 401},
		{"GET /api/tickets/{number}", "/api/tickets/1", apiToken, "", 200},
		{"GET /api/tickets/{number}", "/api/tickets/999", apiToken, "", 404},
		{"PATCH /api/tickets/{number}", "/api/tickets/1", apiToken, `{"priority":"high"}`, 200},
		{"POST /api/tickets/hooks/webhook", "/api/tickets/hooks/webhook", "", `{}`, 0},
		{"POST /api/tickets/hooks/zendesk", "/api/tickets/hooks/zendesk", "", `{}`, 0},
	}
	called := map[string]bool{}
	for _, c := range calls {
		method, _, _ := strings.Cut(c.op, " ")
		var rd io.Reader
		if c.body != "" {
			rd = strings.NewReader(c.body)
		}
		req, err := http.NewRequest(method, g.base+c.path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if c.want != 0 && resp.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d: %s", method, c.path, resp.StatusCode, c.want, body)
		}
		if c.want == 0 && resp.StatusCode < 400 {
			t.Errorf("%s %s: an unsigned hook was accepted (%d)", method, c.path, resp.StatusCode)
		}
		s.check(t, c.op, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		called[c.op] = true
	}
	for _, op := range ops {
		if !called[op] {
			t.Errorf("documented operation %s was not called", op)
		}
	}

	// Pages of one conversation each, following next, reach every one once.
	var seen []string
	next := ""
	for range 10 {
		var page struct {
			Conversations []struct{ ID string }
			Next          string
		}
		g.getJSON(t, "/api/v1/conversations?limit=1&next="+next, &page)
		for _, c := range page.Conversations {
			seen = append(seen, c.ID)
		}
		if next = page.Next; next == "" {
			break
		}
	}
	if !slices.Equal(seen, []string{g.conv}) {
		t.Errorf("paged conversations = %v, want [%s]", seen, g.conv)
	}
	var queues struct {
		Queues []api.QueueStatus
	}
	g.getJSON(t, "/api/v1/queues", &queues)
	if len(queues.Queues) != 2 || queues.Queues[0].Name != "billing" || queues.Queues[1].Name != "general" || !queues.Queues[1].Default {
		t.Errorf("queues = %+v, want billing and general (default)", queues.Queues)
	}
	var ct api.Contact
	g.getJSON(t, "/api/v1/contacts/"+contactID, &ct)
	var ids []string
	for _, id := range ct.Identities {
		ids = append(ids, id.Identity)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"sms:+14155550100", "whatsapp:+14155550100"}) || ct.OpenConversation != g.conv {
		t.Errorf("contact = %+v", ct)
	}
	var tr struct {
		Entries []api.Entry
		Next    string
	}
	g.getJSON(t, "/api/v1/conversations/"+g.conv+"/transcript", &tr)
	var texts []string
	for _, e := range tr.Entries {
		if e.Kind == "message" {
			texts = append(texts, e.Channel+" "+e.Direction+" "+e.Text)
		}
	}
	// The first three, then the ticket's notice to the customer (created above).
	if len(texts) != 4 || !strings.Contains(texts[3], "ticket #1") || !strings.HasPrefix(texts[0], "sms inbound Where is my order") || !strings.HasPrefix(texts[1], "sms outbound") || !strings.HasPrefix(texts[2], "whatsapp inbound Thanks!") {
		t.Errorf("transcript messages = %q", texts)
	}
	var end struct{ Entries []api.Entry }
	g.getJSON(t, "/api/v1/conversations/"+g.conv+"/transcript?next="+tr.Next, &end)
	if len(end.Entries) != 0 {
		t.Errorf("after the last page: %d entries", len(end.Entries))
	}
}
