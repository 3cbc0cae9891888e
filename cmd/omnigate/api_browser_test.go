package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browseTranscript opens the transcript page at link in headless Chromium,
// checks that the page's own style applies under its CSP (nothing else may
// load) and that nothing errs on its console, and saves screenshots (wide
// and phone-sized) under $OMNIGATE_TEST_ARTIFACTS or the test's temp dir.
func browseTranscript(t *testing.T, link string) {
	exe := chromiumPath()
	if exe == "" {
		t.Skip("no Chromium found (apt-get install -y chromium, or set OMNIGATE_CHROMIUM): screenshot skipped")
	}
	if testing.Short() {
		t.Skip("browser skipped in -short mode")
	}
	dir := os.Getenv("OMNIGATE_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	violations := make(chan string, 16)
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventConsoleAPICalled); ok && e.Type == runtime.ConsoleAPICalledTypeError {
			for _, a := range e.Args {
				select {
				case violations <- string(a.Value):
				default:
				}
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible("ol.transcript"),
	); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
	if err != nil || bg != "rgb(246, 248, 251)" {
		t.Errorf("body background %q (%v): the page's style did not apply under its CSP", bg, err)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('li.msg').length`))
	if err != nil || n < 3 {
		t.Errorf("%d messages shown (%v), want at least 3", n, err)
	}
	shot := func(name string) {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	shot("transcript.png")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	shot("transcript-phone.png")
	select {
	case v := <-violations:
		t.Errorf("console error on the page: %s", v)
	default:
	}
}
