package web_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// pngBytes is a small valid PNG.
func pngBytes(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// upload posts data as the multipart file name and decodes the answer.
func upload(t *testing.T, f *fixture, token, name string, data []byte) (*http.Response, map[string]any) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+"/channels/web/uploads", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func TestUploads(t *testing.T) {
	f := newFixture(t, "web", testConfig+"uploads:\n  max_bytes: 4096\n")
	c := mustDial(t, f)
	w := c.hello(nil)
	pic := pngBytes(t)

	resp, u := upload(t, f, w.VisitorToken, `..\evil/"photo".png`, pic)
	if resp.StatusCode != http.StatusCreated || u["content_type"] != "image/png" || u["name"] != "photo.png" {
		t.Fatalf("upload: %d %v", resp.StatusCode, u)
	}
	id, url := u["id"].(string), u["url"].(string)
	if !strings.HasPrefix(url, f.url+"/channels/web/uploads/") {
		t.Errorf("url %s", url)
	}

	get, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(get.Body)
	get.Body.Close()
	h := get.Header
	if get.StatusCode != 200 || !bytes.Equal(got, pic) || h.Get("Content-Type") != "image/png" ||
		h.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(h.Get("Content-Disposition"), "inline") ||
		!strings.Contains(h.Get("Content-Disposition"), "photo.png") || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("GET upload: %d %d bytes %v", get.StatusCode, len(got), h)
	}

	// Text that claims to be a picture is served as what it is, for download.
	resp, u2 := upload(t, f, w.VisitorToken, "notes.png", []byte("just some notes\n"))
	if resp.StatusCode != http.StatusCreated || u2["content_type"] != "text/plain" {
		t.Fatalf("text upload: %d %v", resp.StatusCode, u2)
	}
	get, _ = http.Get(u2["url"].(string))
	get.Body.Close()
	if cd := get.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") || get.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("text served as %q, %q", get.Header.Get("Content-Type"), cd)
	}

	for name, data := range map[string][]byte{
		"page.html": []byte("<!doctype html><html><script>alert(1)</script></html>"),
		"pic.svg":   []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`),
		"a.zip":     {'P', 'K', 3, 4, 0, 0, 0, 0},
	} {
		if resp, out := upload(t, f, w.VisitorToken, name, data); resp.StatusCode != http.StatusUnsupportedMediaType || out["code"] != "unsupported_type" {
			t.Errorf("%s: %d %v", name, resp.StatusCode, out)
		}
	}
	if resp, out := upload(t, f, w.VisitorToken, "big.png", append(pic, make([]byte, 5000)...)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized: %d %v", resp.StatusCode, out)
	}
	if resp, _ := upload(t, f, "v1.forged.token", "x.png", pic); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged token upload: %d", resp.StatusCode)
	}
	if get, _ := http.Get(f.url + "/channels/web/uploads/" + strings.Repeat("a", 26)); get.StatusCode != 404 {
		t.Errorf("unknown upload: %d", get.StatusCode)
	}

	// A message carrying the upload: the envelope has its URL.
	c.send(map[string]any{"type": "message", "client_id": "pic", "text": "see", "attachments": []map[string]string{{"id": id}}})
	echo := c.next("message")
	if len(echo.Attachments) != 1 || echo.Attachments[0].URL != url {
		t.Errorf("echo attachments %+v", echo.Attachments)
	}
	m := inbound(t, f.env, 1)[0]
	if len(m.Attachments) != 1 || m.Attachments[0].URL != url || m.Attachments[0].ContentType != "image/png" || m.Attachments[0].Size != int64(len(pic)) {
		t.Errorf("envelope attachments %+v", m.Attachments)
	}
	// Another visitor cannot attach it.
	c2 := mustDial(t, f)
	c2.hello(nil)
	c2.send(map[string]any{"type": "message", "client_id": "steal", "attachments": []map[string]string{{"id": id}}})
	if e := c2.next("error"); e.Code != "unknown_upload" {
		t.Errorf("foreign upload: %s", e.Code)
	}

	// Raw body upload, for apps.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+"/channels/web/uploads?name=raw.png", bytes.NewReader(pic))
	req.Header.Set("Authorization", "Bearer "+w.VisitorToken)
	req.Header.Set("Content-Type", "application/octet-stream")
	raw, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw.Body.Close()
	if raw.StatusCode != http.StatusCreated {
		t.Errorf("raw upload: %d", raw.StatusCode)
	}
}

// TestUploads_LargeChunked stores a file of several chunks and reads it back.
func TestUploads_LargeChunked(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	c := mustDial(t, f)
	w := c.hello(nil)
	data := append(pngBytes(t), bytes.Repeat([]byte{0x42}, 700<<10)...)
	resp, u := upload(t, f, w.VisitorToken, "big.png", data)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %v", resp.StatusCode, u)
	}
	get, err := http.Get(u["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes, want %d identical", len(got), len(data))
	}
}

// TestUploads_OversizedRefusedNothingKept: a file over uploads.max_bytes is
// refused with 413 whether its size is declared (refused unread) or only
// found out while it streams in (what was stored of it is deleted).
func TestUploads_OversizedRefusedNothingKept(t *testing.T) {
	const limit = 600 << 10 // more than two chunks
	f := newFixture(t, "web", testConfig+"uploads:\n  max_bytes: 614400\n")
	c := mustDial(t, f)
	w := c.hello(nil)
	big := append(pngBytes(t), make([]byte, limit)...)
	for _, tt := range []struct {
		name string
		body io.Reader
		size int64
	}{
		{"declared", bytes.NewReader(big), int64(len(big))},
		{"chunked", io.MultiReader(bytes.NewReader(big)), -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+"/channels/web/uploads?name=big.png", tt.body)
			req.ContentLength = tt.size
			req.Header.Set("Authorization", "Bearer "+w.VisitorToken)
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || out["code"] != "too_large" {
				t.Errorf("%d %v, want 413 too_large", resp.StatusCode, out)
			}
			keys, err := f.env.Deps.Store.Records("web_uploads").Keys(t.Context(), "")
			if err != nil || len(keys) != 0 {
				t.Errorf("stored after the refusal: %v %v", keys, err)
			}
		})
	}
	// Just within the limit, in three chunks, it is stored whole.
	ok := append(pngBytes(t), make([]byte, limit-len(pngBytes(t)))...)
	resp, u := upload(t, f, w.VisitorToken, "ok.png", ok)
	if resp.StatusCode != http.StatusCreated || u["size"] != float64(limit) {
		t.Fatalf("upload at the limit: %d %v", resp.StatusCode, u)
	}
	get, err := http.Get(u["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if !bytes.Equal(got, ok) {
		t.Errorf("read back %d bytes, want %d identical", len(got), len(ok))
	}
}
